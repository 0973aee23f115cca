# syntax=docker/dockerfile:1
# Build: a static binary (no cgo), reproducible, without VCS stamping.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/avatarproxy .

# Run: distroless static has CA certificates (the gateway and CDN are HTTPS),
# no shell, and a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/avatarproxy /avatarproxy
USER nonroot:nonroot
WORKDIR /var/lib/avatarproxy
ENV AVATAR_LISTEN=:8080 AVATAR_DISK_DIR=/var/lib/avatarproxy
VOLUME ["/var/lib/avatarproxy"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 CMD ["/avatarproxy", "healthcheck"]
ENTRYPOINT ["/avatarproxy"]
