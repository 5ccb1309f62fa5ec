/**
 * No egress: imported FIRST by every entry point (scripts/*.ts, bench/run.ts), before anything
 * loads @apollo/gateway. Unless APOLLO_TELEMETRY_DISABLED is set, @apollo/gateway starts an
 * OpenTelemetry exporter that sends usage data to Apollo and probes cloud metadata services
 * (AWS, GCP, Azure, Alibaba) when a gateway is built. paygraph sets it itself, whatever the
 * environment says, so no deployment can forget it. gateway/pipeline.ts sets it again right
 * before it builds the ApolloGateway (the gateway reads it there), which covers code that builds
 * a gateway without going through an entry point (tests, embedding). docs/operations.md#no-egress.
 */
process.env.APOLLO_TELEMETRY_DISABLED = 'true';

export {};
