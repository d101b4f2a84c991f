package telemetry

import (
	"encoding/json"
	"sort"
	"sync"
	"time"
)

// Health collects the state of components that can fail on their own
// while the rest of the daemon keeps running (a Cynet tenant whose
// credentials were refused, say). /healthz shows it. Safe for concurrent
// use.
type Health struct {
	mu    sync.Mutex
	items map[string]healthItem
}

type healthItem struct {
	OK      bool      `json:"ok"`
	Message string    `json:"message,omitempty"`
	Since   time.Time `json:"since"`
}

// NewHealth returns an empty registry.
func NewHealth() *Health { return &Health{items: map[string]healthItem{}} }

// Set records component's state. msg must be safe to show (no secrets).
func (h *Health) Set(component string, ok bool, msg string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, found := h.items[component]; found && cur.OK == ok && cur.Message == msg {
		return
	}
	h.items[component] = healthItem{OK: ok, Message: msg, Since: time.Now().UTC()}
}

// Report is the /healthz body: "ok" or "degraded", with every component.
func (h *Health) Report() (ok bool, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ok = true
	names := make([]string, 0, len(h.items))
	for n, it := range h.items {
		names = append(names, n)
		ok = ok && it.OK
	}
	sort.Strings(names)
	type entry struct {
		Component string `json:"component"`
		healthItem
	}
	out := struct {
		Status     string  `json:"status"`
		Components []entry `json:"components"`
	}{Status: "ok"}
	if !ok {
		out.Status = "degraded"
	}
	for _, n := range names {
		out.Components = append(out.Components, entry{n, h.items[n]})
	}
	body, _ = json.Marshal(out)
	return ok, append(body, '\n')
}
