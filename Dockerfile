# syntax=docker/dockerfile:1
# Builds the single switchyard binary (controller, gateway, standalone, echo) into a
# minimal, non-root image: the static binary, CA certificates and a passwd entry.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/switchyard ./cmd/switchyard \
 && echo 'switchyard:x:65532:65532:switchyard:/:/sbin/nologin' > /out/passwd

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/switchyard /usr/local/bin/switchyard
USER 65532:65532
EXPOSE 8080 8443 9901
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["standalone", "--config", "/etc/switchyard", "--admin-addr", "127.0.0.1:9901"]
