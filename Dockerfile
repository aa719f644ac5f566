# syntax=docker/dockerfile:1
# taillight: one static, non-root binary in a distroless image.
#
#   docker build -t taillight:dev --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm taillight:dev version
#
# deployments/deploy_test.go parses this file and builds the binary with the
# same command as the build stage below (and checks it is static), so keep the
# `go build` line and the test in step.

# Go version: the minor release go.mod asks for (the test checks they agree).
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# CGO off: a static binary that runs on distroless/static (no libc) and on
# scratch. -trimpath and -s -w: reproducible paths, no symbol tables.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/taillight ./cmd/taillight

# distroless/static: CA certificates, tzdata and /etc/passwd with the nonroot
# user (65532), nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/taillight /taillight
USER 65532:65532
# 8080: taillight ingest (POST /v1/traces, /metrics, /healthz, /readyz);
# 9102: taillight process (/metrics, /healthz, /readyz).
EXPOSE 8080 9102
ENTRYPOINT ["/taillight"]
CMD ["help"]
