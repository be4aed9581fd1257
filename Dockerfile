# syntax=docker/dockerfile:1
# The workbench as container images (not built on the project's machines, which run no Docker
# engine; tests/readers/compose.py checks this file and docker-compose.yml against the workspace).
#
#   build     the whole cargo workspace, release mode
#   runtime   a slim image with the binary, envs/, experiments/ and the sample snapshot:
#             docker build --target runtime -t contract-rl . && docker run --rm contract-rl
#   airflow   Apache Airflow 3.3.2 with the binary and the same files, for the DAG's tasks
#
# The commit the binary records comes from the build argument COMMIT (no .git in the context).

FROM rust:1.89-bookworm AS build
# librdkafka and its vendored OpenSSL build with cmake, a C compiler, make and Perl.
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang make perl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs rustfmt.toml ./
COPY crates crates
COPY src src
COPY benches benches
ARG COMMIT
ENV CONTRACT_RL_COMMIT=${COMMIT}
RUN cargo build --release --locked --bin contract-rl

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/contract-rl /usr/local/bin/contract-rl
WORKDIR /workbench
COPY envs envs
COPY experiments experiments
COPY data/snapshots/sample.parquet data/snapshots/sample.manifest.json data/snapshots/
# Compose's `work` volume takes the owner of the first image's /work that mounts it: Airflow's
# user (uid 50000, group 0) in both images, so the DAG's tasks can write there.
RUN mkdir /work && chown 50000:0 /work
ENTRYPOINT ["contract-rl"]
CMD ["run", "experiments/quickstart.toml"]

FROM apache/airflow:3.3.2 AS airflow
COPY --from=build /src/target/release/contract-rl /usr/local/bin/contract-rl
COPY --chown=airflow envs /workbench/envs
COPY --chown=airflow experiments /workbench/experiments
COPY --chown=airflow data/snapshots/sample.parquet data/snapshots/sample.manifest.json /workbench/data/snapshots/
USER root
RUN mkdir /work && chown 50000:0 /work
USER airflow
