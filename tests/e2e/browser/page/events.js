// Live updates from the API's GET /events (Server-Sent Events), read with fetch: EventSource
// cannot send an Authorization header. Plain JavaScript, no dependencies.
//
//   const events = openEvents(`${apiBase}/events`, getToken, (event) => { ... });
//   ...
//   events.close();
//
// getToken(): (a promise of) a current bearer token, asked for on every connection.
// onEvent({ type, id, data }): type "todo" (data: {op: "upsert", todo} or {op: "delete", id})
//   or "reminder" (data: {op: "reminder", remind_at, todo}); `id` also works as `since` for
//   GET /todos/changes.
// lastEventId (optional): where to start, e.g. the `next` of GET /todos/changes after the
//   app's first load, so that nothing committed in between is missed; without it the stream
//   starts from now.
//
// When the stream ends (the server sends a `retry:` hint first: shutdown, token expiry) or a
// connection fails, it reconnects after that delay (longer after each failure) and resumes
// with Last-Event-ID: no change is lost. If the server cannot resume from there (410), it
// calls onEvent({ type: "resync" }) and stops: reload from GET /todos/changes (no `since`)
// and open a new stream from that load's `next`. `connected` says whether a stream is open.
export function openEvents(url, getToken, onEvent, lastEventId = null) {
  const stop = new AbortController();
  let retryMs = 3000; // until the server says otherwise
  let connected = false;

  async function connect() {
    const headers = { Authorization: `Bearer ${await getToken()}` };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    const response = await fetch(url, { headers, signal: stop.signal });
    if (response.status === 410) {
      stop.abort();
      onEvent({ type: "resync" });
      return;
    }
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
    connected = true;
    try {
      await read(response.body.pipeThrough(new TextDecoderStream()).getReader());
    } finally {
      connected = false;
    }
  }

  // One field per line ("name: value"), a blank line ends an event, ":" starts a comment.
  async function read(reader) {
    let buffer = "";
    let event = {};
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (done) return;
      const lines = (buffer + chunk).split(/\r?\n/);
      buffer = lines.pop(); // the start of a line still on its way
      for (const line of lines) {
        if (line === "") {
          if (event.id !== undefined) lastEventId = event.id;
          if (event.data !== undefined) {
            const data = JSON.parse(event.data.join("\n"));
            onEvent({ type: event.type ?? "message", id: event.id, data });
          }
          event = {};
          continue;
        }
        if (line.startsWith(":")) continue; // a comment: the heartbeat
        const [, name, value = ""] = line.match(/^([^:]*)(?:: ?(.*))?$/);
        if (name === "event") event.type = value;
        else if (name === "id") event.id = value;
        else if (name === "data") (event.data ??= []).push(value);
        else if (name === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
      }
    }
  }

  (async () => {
    for (let failures = 0; !stop.signal.aborted; ) {
      try {
        await connect();
        failures = 0;
      } catch (error) {
        if (stop.signal.aborted) return;
        failures += 1;
        console.warn(`events: ${error.message}; reconnecting`);
      }
      const delay = Math.min(retryMs * 2 ** failures, 30_000); // longer after each failure
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  })();

  return {
    close: () => stop.abort(),
    get connected() {
      return connected;
    },
  };
}
