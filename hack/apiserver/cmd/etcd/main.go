// Command etcd runs a single-member etcd for the kube-apiserver testbed.
//
// It embeds go.etcd.io/etcd/server/v3 at the version that k8s.io/apiserver
// requires, so the testbed needs no etcd release binary. It skips fsync
// (UnsafeNoFsync) because test data is thrown away, and it serves the v3
// HTTP/JSON gateway on the client URL so that tests can read the current
// revision and request a compaction over plain HTTP.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dataDir := flag.String("data-dir", "", "directory for the etcd data (required)")
	clientURL := flag.String("listen-client-url", "http://127.0.0.1:2379", "URL to serve clients on (gRPC and the HTTP/JSON gateway)")
	peerURL := flag.String("listen-peer-url", "http://127.0.0.1:2380", "URL to serve peers on (a single member still needs one)")
	name := flag.String("name", "testbed", "member name")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn or error")
	startTimeout := flag.Duration("start-timeout", 60*time.Second, "time to wait for the server to become ready")
	flag.Parse()

	if *dataDir == "" {
		log.Fatal("etcd: --data-dir is required")
	}
	cfg, err := newConfig(*name, *dataDir, *clientURL, *peerURL, *logLevel)
	if err != nil {
		log.Fatalf("etcd: %v", err)
	}

	server, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("etcd: start failed: %v", err)
	}
	defer server.Close()

	select {
	case <-server.Server.ReadyNotify():
		log.Printf("etcd: ready, serving clients on %s", *clientURL)
	case <-time.After(*startTimeout):
		server.Server.Stop()
		log.Fatalf("etcd: not ready after %s", *startTimeout)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	select {
	case sig := <-signals:
		log.Printf("etcd: received %s, stopping", sig)
	case err := <-server.Err():
		log.Fatalf("etcd: server failed: %v", err)
	}
}

func newConfig(name, dataDir, clientURL, peerURL, logLevel string) (*embed.Config, error) {
	client, err := url.Parse(clientURL)
	if err != nil {
		return nil, fmt.Errorf("invalid --listen-client-url %q: %w", clientURL, err)
	}
	peer, err := url.Parse(peerURL)
	if err != nil {
		return nil, fmt.Errorf("invalid --listen-peer-url %q: %w", peerURL, err)
	}

	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = dataDir
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(name)
	cfg.EnableGRPCGateway = true
	cfg.UnsafeNoFsync = true
	cfg.Logger = "zap"
	cfg.LogLevel = logLevel
	cfg.LogOutputs = []string{"stderr"}
	return cfg, nil
}
