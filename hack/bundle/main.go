// Command validate-bundle runs the operator-framework bundle validators on a
// registry+v1 bundle directory, as `operator-sdk bundle validate` does, without
// needing operator-sdk or a container engine.
//
// It loads the bundle with manifests.GetBundleFromDir and runs the default bundle
// validators (CSV, CRD, bundle) and the OperatorHub validator. It prints every
// error and warning, one a line, and exits 1 when there is an error.
//
// NOTE: github.com/operator-framework/api v0.9.1 is the newest version that the Go
// module proxy serves to this project's build machines. Its loader does not read
// metadata/annotations.yaml, so hack/manifests/validate_bundle.py checks that file.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
)

func main() {
	k8sVersion := flag.String("k8s-version", "",
		"Kubernetes version that the OperatorHub validator checks removed APIs against, for example 1.30")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [--k8s-version V] BUNDLE_DIR\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(flag.Arg(0), *k8sVersion))
}

func run(dir string, k8sVersion string) int {
	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ERROR loading bundle %s failed: %v\n", dir, err)
		return 1
	}
	if bundle.CSV == nil {
		fmt.Fprintf(os.Stderr, "ERROR bundle %s contains no ClusterServiceVersion\n", dir)
		return 1
	}

	objects := bundle.ObjectsToValidate()
	if k8sVersion != "" {
		objects = append(objects, map[string]string{"k8s-version": k8sVersion})
	}
	validators := validation.DefaultBundleValidators.WithValidators(validation.OperatorHubValidator)
	results := validators.Validate(objects...)

	errorCount, warningCount := report(results)
	fmt.Printf("bundle %s (%s, %d v1 CRDs, %d objects): %d errors, %d warnings\n",
		dir, bundle.CSV.GetName(), len(bundle.V1CRDs), len(bundle.Objects), errorCount, warningCount)
	if errorCount > 0 {
		return 1
	}
	return 0
}

// report prints every error and warning of results and returns their counts.
func report(results []errors.ManifestResult) (int, int) {
	errorCount, warningCount := 0, 0
	for _, result := range results {
		for _, e := range result.Errors {
			fmt.Printf("ERROR %s: %s\n", result.Name, e.Error())
			errorCount++
		}
		for _, w := range result.Warnings {
			fmt.Printf("WARNING %s: %s\n", result.Name, w.Error())
			warningCount++
		}
	}
	return errorCount, warningCount
}
