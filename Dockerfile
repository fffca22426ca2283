# Cascade SFU image: the sfu and relayctl binaries, static, on distroless as a non-root user.
#   docker build -t cascade-sfu .
# Build stage: a static binary (no cgo), so the runtime image needs no libc.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags="-s -w" -o /out/sfu ./cmd/sfu && \
    go build -trimpath -ldflags="-s -w" -o /out/relayctl ./cmd/relayctl

# Runtime: distroless static (CA certificates for rediss://, tzdata, /etc/passwd with nonroot),
# no shell, no package manager; uid 65532 "nonroot".
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sfu /out/relayctl /usr/local/bin/
USER 65532:65532
# 7880/tcp HTTP (signalling, WHIP/WHEP, API, /metrics, /healthz, /livez); 7882/udp all WebRTC
# media; 7946 tcp+udp cluster gossip (Serf).
EXPOSE 7880/tcp 7882/udp 7946/tcp 7946/udp
# The node listens on 127.0.0.1 by default: in a container, set CASCADE_HTTP=0.0.0.0:7880.
ENV CASCADE_HTTP=0.0.0.0:7880 CASCADE_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/sfu"]
