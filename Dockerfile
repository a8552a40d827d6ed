# A static kubepki image: one binary, no shell, no package manager, run as
# uid 65532 unless a manifest says otherwise (the node audit, see
# deploy/node-audit/daemonset.yaml).
#
#   docker build -t registry.example.com/kubepki:v0.1.0 --build-arg VERSION=v0.1.0 .
#
# The build is the one deploy/deploy_test.go checks: CGO off, -trimpath, and
# a binary with no dynamic loader, so it runs on a distroless static base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/kubepki/kubepki/internal/version.version=${VERSION}" \
	-o /out/kubepki ./cmd/kubepki

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kubepki /kubepki
USER 65532:65532
ENTRYPOINT ["/kubepki"]
