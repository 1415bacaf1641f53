# multus-webhook: the webhook server, controller, node agent and installer in one image.
# Build stage: install the pinned dependencies and the package into /app with pip, then compile them.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY webhook ./webhook
# requirements.lock pins every run-time dependency to the version the tests ran against (make lock);
# --no-deps installs exactly those, nothing resolved anew on build day.
# The root filesystem is read-only at run time: the bytecode is compiled here, or every start would
# compile every module again. unchecked-hash .pyc hold no timestamp (the same bytes on every build)
# and are loaded without reading their source again; nothing in the image changes its sources.
RUN pip install --no-cache-dir --no-compile --no-deps --target /app -r requirements.lock . \
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /app \
 && printf '#!/usr/bin/python3\nimport sys\nfrom webhook.cli import main\nsys.exit(main())\n' > /app/multus-webhook \
 && chmod 0755 /app/multus-webhook

# The CNI reference plugins the Talos installer puts on the nodes, built from the Go modules the tests
# run them from (hack/cniplugins/go.mod, go.sum): the plugins installed are the plugins the rules were
# checked against. build.sh prints the directory it built them in; its test tool multus-add stays out.
FROM golang:1.26-bookworm AS cni-plugins
WORKDIR /src
COPY hack/gobuild.sh ./hack/
COPY hack/cniplugins ./hack/cniplugins
RUN built=$(bash hack/cniplugins/build.sh) \
 && mkdir /cni-plugins \
 && find "$built" -maxdepth 1 -type f -perm -u+x ! -name multus-add ! -name '.*' -exec cp {} /cni-plugins/ \;

# Run stage: distroless Python of the same Debian release (same glibc for the binary wheels); no shell.
FROM gcr.io/distroless/python3-debian12:nonroot
COPY --from=build /app /app
COPY --from=cni-plugins /cni-plugins /opt/multus-webhook/cni-plugins
ENV PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/app/multus-webhook"]
# The manifests' cert dir (manifests/base/webhook/deployment.yaml).
CMD ["serve", "--cert-dir", "/var/run/multus-webhook/certs"]
