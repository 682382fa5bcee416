# The Beemesh image: the beemesh CLI (agent, inject), beemesh-sidecar (the sidecar, which `beemesh
# sidecar` execs), beemesh-slirp (also as slirp4netns)
# and beemesh-nsenter, with libmsquic for QUIC tunnels. Runs `beemesh sidecar` by default, as the
# container that `beemesh inject` adds to a pod.
#
#   podman build -t localhost/beemesh:latest .
#
# Build arguments:
#   SDK_IMAGE       image that compiles (NativeAOT needs clang and zlib, installed below)
#   RUNTIME_IMAGE   image that runs; any glibc Linux with libssl3 and ca-certificates
#   BIN_SOURCE      "build" compiles in SDK_IMAGE; "prebuilt" copies out/bin from the build context
#                   (run ./scripts/build first), for machines that cannot pull SDK_IMAGE. The
#                   binaries must then have been built against a glibc no newer than RUNTIME_IMAGE's.
#   INSTALL_MSQUIC  "true" adds libmsquic from Microsoft's package repository for the distribution
#                   of RUNTIME_IMAGE; "false" leaves it out (the mesh then tunnels over TCP+TLS only).
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime-deps:10.0
ARG BIN_SOURCE=build

FROM ${SDK_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang zlib1g-dev make gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -s -C native \
 && dotnet publish netstack/Beemesh.Slirp -c Release -r linux-x64 -o /out --nologo -p:DebugType=none \
 && dotnet publish sidecar/Beemesh.Cli -c Release -r linux-x64 -o /out --nologo -p:DebugType=none \
 && dotnet publish sidecar/Beemesh.Sidecar.Host -c Release -r linux-x64 -o /out --nologo -p:DebugType=none \
 && install -m 0755 native/build/beemesh-nsenter /out/beemesh-nsenter

FROM scratch AS bin-build
COPY --from=build /out/beemesh /out/beemesh-sidecar /out/beemesh-slirp /out/beemesh-nsenter /

FROM scratch AS bin-prebuilt
COPY out/bin/beemesh out/bin/beemesh-sidecar out/bin/beemesh-slirp out/bin/beemesh-nsenter /

FROM bin-${BIN_SOURCE} AS bin

FROM ${RUNTIME_IMAGE}
ARG INSTALL_MSQUIC=true
ARG VERSION=dev
LABEL org.opencontainers.image.title="beemesh" \
      org.opencontainers.image.description="Beemesh sidecar, node agent and rootless network (beemesh-slirp)" \
      org.opencontainers.image.version="${VERSION}"
# One RUN and one COPY: each step of a build copies the whole root file system on storage
# drivers without overlays (rootless podman's vfs).
# .NET 10 needs msquic 2.2.2 or newer; it loads libmsquic.so.2 from the dynamic linker's path.
RUN set -e; \
    if [ "$INSTALL_MSQUIC" = true ]; then \
      . /etc/os-release; \
      apt-get update; \
      apt-get install -y --no-install-recommends ca-certificates curl gpg; \
      curl -fsSL https://packages.microsoft.com/keys/microsoft.asc | gpg --dearmor -o /usr/share/keyrings/microsoft.gpg; \
      echo "deb [signed-by=/usr/share/keyrings/microsoft.gpg] https://packages.microsoft.com/$ID/$VERSION_ID/prod $VERSION_CODENAME main" \
        > /etc/apt/sources.list.d/microsoft-prod.list; \
      apt-get update; \
      apt-get install -y --no-install-recommends libmsquic; \
      apt-get purge -y --auto-remove curl gpg; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --gid 10001 beemesh; \
    useradd --uid 10001 --gid beemesh --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin beemesh; \
    ln -s beemesh-slirp /usr/local/bin/slirp4netns
COPY --from=bin /beemesh /beemesh-sidecar /beemesh-slirp /beemesh-nsenter /usr/local/bin/
USER beemesh
ENTRYPOINT ["beemesh", "sidecar"]
