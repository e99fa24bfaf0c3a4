# syntax=docker/dockerfile:1
# The `sluice` binary and a dataset spec in a small runtime image: one image for every Sluice process
# (each container runs one command: `sluice worker validator`, `sluice dispatcher`, ...), for ECS
# (deploy/sluice.yaml) and for compose/docker-compose.yml.
#
#   docker build -t sluice .                                   # the repository's sluice.toml
#   docker build -t sluice --build-arg SLUICE_SPEC=path/to/sluice.toml .
#
# The spec is copied to /etc/sluice/sluice.toml and SLUICE_CONFIG names it, so the processes need no
# --config; a new spec is a new image (docker-compose.yml mounts the file over it instead).
# .dockerignore keeps target/, the venvs and the git history out of the build context.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target dir between builds; target/ is a cache, so the binary is
# copied out of it inside the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sluice-cli --bin sluice \
    && install -m 0755 target/release/sluice /usr/local/bin/sluice

# Distroless: glibc, libgcc and the CA certificates (the AWS SDK talks TLS to AWS) and nothing else, no
# shell, no package manager; the binary needs no other library (ldd: libc, libm, libgcc_s).
FROM gcr.io/distroless/cc-debian12:nonroot
ARG SLUICE_SPEC=sluice.toml
COPY --from=build /usr/local/bin/sluice /usr/local/bin/sluice
COPY ${SLUICE_SPEC} /etc/sluice/sluice.toml
ENV SLUICE_CONFIG=/etc/sluice/sluice.toml
# /tmp is each process's scratch space (downloads, outputs before upload). A volume, so that tasks can
# run with a read-only root filesystem: ECS Fargate mounts its bind-mount volume at a container path
# that the image declares a VOLUME with that path's ownership and mode (distroless: 1777), where an
# undeclared path would get root's 0755, which the non-root user cannot write.
VOLUME ["/tmp"]
# The image's non-root user (nonroot, 65532).
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["--help"]
