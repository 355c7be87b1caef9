import assert from "node:assert/strict";
import { test } from "node:test";

import {
  gateDelay, limitReason, limitRefusal, outcomeAfterClose, refusalText, resetPhrase, startGate,
} from "../../static/js/conversation/limit-refusal.js";

const UTC = { locale: "en-GB", timeZone: "UTC" };
const error = (fields) => ({ type: "error", code: "limit_reached", fatal: true, message: "server words", ...fields });

test("only an error with code limit_reached is a limit refusal", () => {
  assert.equal(limitRefusal({ type: "error", code: "upstream_busy", message: "busy" }), null);
  assert.equal(limitRefusal({ type: "limit_warning", code: "limit_warning" }), null);
  assert.equal(limitRefusal(null), null);
  const refusal = limitRefusal(error({ limit: "audio_per_day", resets_at: "2026-11-26T00:00:00+01:00" }));
  assert.equal(refusal.limit, "audio_per_day");
  assert.equal(refusal.resetsAt.toISOString(), "2026-11-25T23:00:00.000Z");
  assert.equal(limitRefusal(error({ limit: "concurrent", resets_at: null })).resetsAt, null);
  assert.equal(limitRefusal(error({ limit: "x", resets_at: "not a date" })).resetsAt, null);
});

test("a 4429 after a limit refusal is a limit, a 4429 without one still offers Start", () => {
  const refusal = limitRefusal(error({ limit: "cost_per_day", resets_at: "2026-11-26T00:00:00Z" }));
  assert.equal(outcomeAfterClose(4429, refusal), "limit");
  assert.equal(outcomeAfterClose(4429, null), "offer-start");
  assert.equal(outcomeAfterClose(1006, refusal), "retry"); // a refusal never hides a dropped socket's rule
  assert.equal(outcomeAfterClose(1000, null), "ended");
});

test("Start waits until a windowed limit resets, and stays usable for limits the user can lift", () => {
  const now = new Date("2026-11-25T22:18:00Z");
  const daily = limitRefusal(error({ limit: "audio_per_day", resets_at: "2026-11-26T00:00:00Z" }));
  assert.deepEqual(startGate(daily, now), { disabled: true, until: daily.resetsAt });
  assert.equal(gateDelay(startGate(daily, now), now), 102 * 60_000);
  for (const limit of ["concurrent", "conversation_minutes"]) {
    assert.deepEqual(startGate(limitRefusal(error({ limit, resets_at: null })), now), { disabled: false, until: null });
  }
  assert.equal(startGate(daily, new Date("2026-11-26T00:00:00Z")).disabled, false); // the reset has come
  assert.equal(gateDelay({ disabled: false, until: null }, now), null);
  const monthly = limitRefusal(error({ limit: "cost_per_month", resets_at: "2027-01-01T00:00:00Z" }));
  assert.ok(gateDelay(startGate(monthly, now), now) <= 2_147_000_000); // setTimeout's limit
});

test("the reset is said in the user's local time: minutes within the hour, the clock time later", () => {
  const now = new Date("2026-11-25T22:18:00Z");
  assert.equal(resetPhrase(new Date("2026-11-25T23:00:00Z"), now, UTC), "in 42 minutes");
  assert.equal(resetPhrase(new Date("2026-11-25T22:18:20Z"), now, UTC), "in 1 minute");
  assert.equal(resetPhrase(new Date("2026-11-25T23:30:00Z"), now, UTC), "at 23:30");
  assert.equal(resetPhrase(new Date("2026-11-26T00:00:00Z"), now, UTC), "tomorrow at 00:00");
  assert.equal(resetPhrase(new Date("2026-12-01T00:00:00Z"), now, UTC), "on 1 Dec at 00:00");
  // The same moment read in Tokyo is tomorrow morning there.
  assert.equal(resetPhrase(new Date("2026-11-26T00:00:00Z"), now, { locale: "en-GB", timeZone: "Asia/Tokyo" }), "at 09:00");
});

test("the page's words name the limit and when Start works again", () => {
  const now = new Date("2026-11-25T22:18:00Z");
  const daily = limitRefusal(error({ limit: "audio_per_day", resets_at: "2026-11-26T00:00:00Z" }));
  assert.equal(refusalText(daily, now, UTC),
    "You have reached your daily audio limit. It resets tomorrow at 00:00; you can press Start again then.");
  const live = limitRefusal(error({ limit: "concurrent", resets_at: null }));
  assert.match(refusalText(live, now, UTC), /^You already have as many conversations going/);
  assert.equal(limitReason(limitRefusal(error({ limit: "something_new" }))), "server words");
});
