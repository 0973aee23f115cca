# syntax=docker/dockerfile:1
# Build: a static binary (no cgo), reproducible, without VCS stamping.
# Pinned to go.mod's version: the image sets GOTOOLCHAIN=local, so an older
# cached 1.26 would fail to build.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/avatarproxy . && mkdir -p /out/data

# Run: distroless static has CA certificates (the gateway and CDN are HTTPS),
# no shell, and a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/avatarproxy /avatarproxy
# The disk tier's folder, owned by nonroot (65532) whatever the builder:
# only BuildKit gives a WORKDIR made after USER to that user.
COPY --from=build --chown=65532:65532 /out/data /var/lib/avatarproxy
USER nonroot:nonroot
WORKDIR /var/lib/avatarproxy
ENV AVATAR_LISTEN=:8080 AVATAR_DISK_DIR=/var/lib/avatarproxy
VOLUME ["/var/lib/avatarproxy"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 CMD ["/avatarproxy", "healthcheck"]
ENTRYPOINT ["/avatarproxy"]
