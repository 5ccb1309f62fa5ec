/** A failed request, in words, with the API's error code (UNAUTHENTICATED, SUBGRAPH_UNAVAILABLE…). */
export function ErrorNote({ error }: { error: Error }) {
  const codes = (error as { errors?: { extensions?: { code?: string } }[] }).errors?.map((e) => e.extensions?.code).filter(Boolean) ?? [];
  return (
    <p className="error-note" role="alert">
      {error.message}
      {codes.length ? <span className="muted"> ({codes.join(', ')})</span> : null}
    </p>
  );
}
