# weir's container images: the static processor binary in an empty
# (scratch) image. Nothing is pulled: build the binary first, then the
# image, from the repository root (.dockerignore sends only the binary):
#
#   CGO_ENABLED=0 go build -trimpath -o processor ./cmd/processor
#   docker build -t weir-processor .
#   docker build --target dev-broker -t weir-dev-broker .
#
# Targets:
#
#   processor (the default)  ENTRYPOINT /processor; 'run' serves /healthz on
#                            0.0.0.0:8080 and keeps its state in /state,
#                            both from WEIR_* defaults below (flags win);
#                            HEALTHCHECK runs 'processor healthcheck'.
#   dev-broker               the kfake development broker on 0.0.0.0:9092;
#                            pass --advertise HOST:9092 with the name other
#                            containers reach it by.
#
# Both run as nobody (65534:65534). A scratch image has no shell, no /tmp
# and no curl: the state directory is created here owned by 65534, so a
# volume mounted on /state starts out writable (Docker copies a directory's
# owner into a new empty volume); the health check is the binary itself.
# No "# syntax=" line: BuildKit would pull a frontend image for it, and
# the legacy builder needs none.

# A directory to copy: scratch has no shell to mkdir with, and WORKDIR
# creates directories owned by root whatever USER says.
FROM scratch AS dirs
WORKDIR /state

FROM scratch AS base
COPY --from=dirs --chown=65534:65534 /state /state
COPY processor /processor
USER 65534:65534

FROM base AS dev-broker
EXPOSE 9092
HEALTHCHECK NONE
ENTRYPOINT ["/processor", "dev-broker", "--listen", "0.0.0.0:9092"]

FROM base AS processor
ENV WEIR_HTTP=0.0.0.0:8080 \
    WEIR_STATE_DIR=/state
EXPOSE 8080
VOLUME ["/state"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/processor", "healthcheck", "--url", "http://127.0.0.1:8080/healthz", "--timeout", "4s"]
ENTRYPOINT ["/processor"]
CMD ["--help"]
