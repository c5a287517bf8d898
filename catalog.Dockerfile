# The base image contains /bin/opm (with its serve subcommand) and /bin/grpc_health_probe.
FROM quay.io/operator-framework/opm:latest

ENTRYPOINT ["/bin/opm"]
CMD ["serve", "/configs", "--cache-dir=/tmp/cache"]

# Copy the file-based catalog to /configs and fill the serve cache.
ADD catalog /configs
RUN ["/bin/opm", "serve", "/configs", "--cache-dir=/tmp/cache", "--cache-only"]

# Location of the file-based catalog in the image.
LABEL operators.operatorframework.io.index.configs.v1=/configs
