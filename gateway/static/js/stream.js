// The live stream: one websocket, resumed with ?after=<last id> on every reconnect so nothing is lost.

export class Stream {
  constructor({ onEvent, onReady, onState }) {
    this.onEvent = onEvent;
    this.onReady = onReady;
    this.onState = onState || (() => {});
    this.last = null; // id of the last event seen; null until the first ready
    this.socket = null;
    this.retry = 0;
    this.stopped = false;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const after = this.last === null ? "" : `?after=${this.last}`;
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream${after}`);
    this.socket = socket;
    this.onState("connecting");
    socket.addEventListener("message", (msg) => {
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch (_) {
        return;
      }
      if (event.type === "stream.ready") {
        const resumed = this.last !== null;
        this.last = event.after;
        this.retry = 0;
        this.onState("live");
        this.onReady(resumed);
        return;
      }
      if (event.type === "notification") { // for this user only, outside the event order (js/bell.js)
        window.dispatchEvent(new CustomEvent("sb:notification", { detail: event.notification }));
        return;
      }
      if (typeof event.id !== "number") return;
      if (this.last !== null && event.id <= this.last) return; // never apply twice
      this.last = event.id;
      this.onEvent(event);
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket || this.stopped) return;
      this.onState("offline");
      const delay = Math.min(10000, 500 * 2 ** this.retry) * (0.5 + Math.random() / 2);
      this.retry += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }
}
