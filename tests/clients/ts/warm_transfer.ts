// A frontend's warm transfer written against the types openapi-typescript generates from confctl's
// /openapi.json (`confctl-api.ts`, made by tests/clients/test_typescript_client.py next to this file).
// It is only type-checked (tsc --strict): every request, header and answer below must match the document,
// and each `@ts-expect-error` line must really be an error, or tsc fails on the unused directive.

import createClient from "openapi-fetch";
import type { components, paths } from "./confctl-api";

type Transfer = components["schemas"]["Transfer"];
type Conference = components["schemas"]["Conference"];
type Problem = components["schemas"]["Problem"];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function fail(what: string, problem: Problem | undefined, status: number): never {
  // A problem document names its `code` (an enum of API.md §5) besides the HTTP status.
  throw new Error(`${what}: ${status} ${problem?.code ?? "(no problem document)"} ${problem?.detail ?? ""}`);
}

export async function warmTransfer(baseUrl: string, apiKey: string, room: string): Promise<Conference> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });
  const conference = { path: { conference_id: room } };

  const added = await api.POST("/v1/conferences/{conference_id}/participants", {
    params: conference,
    body: { to: "client:alice", role: "agent" },
  });
  if (added.error) fail("add the agent", added.error, added.response.status);
  const agent: string = added.data.label;

  // The same Idempotency-Key on a retry returns the first answer: the target is dialed once.
  const key = crypto.randomUUID();
  const started = await api.POST("/v1/conferences/{conference_id}/transfers", {
    params: { ...conference, header: { "Idempotency-Key": key } },
    body: { kind: "warm", from: agent, to: "client:bob", label: "bob" },
  });
  if (started.error) fail("start the transfer", started.error, started.response.status);
  let transfer: Transfer = started.data;

  while (transfer.state === "dialing") {
    await sleep(100);
    const read = await api.GET("/v1/transfers/{transfer_id}", { params: { path: { transfer_id: transfer.id } } });
    if (read.error) fail("read the transfer", read.error, read.response.status);
    transfer = read.data;
  }
  if (transfer.state !== "consulting") throw new Error(`transfer ${transfer.state}: ${transfer.failure_reason}`);

  const done = await api.POST("/v1/transfers/{transfer_id}/complete", { params: { path: { transfer_id: transfer.id } } });
  if (done.error) fail("complete the transfer", done.error, done.response.status);
  console.log(`transfer ${done.data.id} ${done.data.state}, ended at ${done.data.ended_at ?? "?"}`);

  const final = await api.GET("/v1/conferences/{conference_id}", { params: conference });
  if (final.error) fail("read the conference", final.error, final.response.status);
  const joined = final.data.participants.filter((p) => p.status === "joined").map((p) => p.label);
  console.log(`joined now: ${joined.join(", ")}`);
  return final.data;
}

// The types are strict where the API is: each of these is rejected by tsc.
export function misuses(api: ReturnType<typeof createClient<paths>>): void {
  void api.POST("/v1/conferences/{conference_id}/transfers", {
    params: { path: { conference_id: "r" } },
    // @ts-expect-error a transfer is warm or cold
    body: { kind: "lukewarm", from: "agent-1", to: "client:bob" },
  });
  // @ts-expect-error `from` is required
  const noFrom: components["schemas"]["StartTransferRequest"] = { kind: "warm", to: "client:bob" };
  // @ts-expect-error a transfer's state is one of five
  const state: Transfer["state"] = "transferring";
  // @ts-expect-error a problem's code is one of API.md §5, not any string
  const code: Problem["code"] = "no_such_code";
  void [noFrom, state, code];
}
