package k8s

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func podEvent(name, reason, msg string, at time.Time) *Event {
	t := metav1.NewTime(at)
	return &Event{
		ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", name, at.UnixNano()), Namespace: "default"},
		InvolvedObject: ObjectReference{Kind: "Pod", Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Reason:         reason, Message: msg, Type: EventTypeWarning, Count: 1, FirstTimestamp: t, LastTimestamp: t,
		Source: EventSource{Component: "vpcnetd", Host: nodeName},
	}
}

// observeWritten runs e through c and, unless dropped, records it as written the way the API
// server would answer (a create keeps the name, a patch the count).
func observeWritten(t *testing.T, c *correlator, e *Event, now time.Time) (write, bool) {
	t.Helper()
	w, ok := c.observe(e, now)
	if ok {
		c.done(w, w.event, now)
	}
	return w, ok
}

// The pure rules of the agent's events: a repeated event is one event whose count goes up; the
// tenth different message of one object, type and reason within ten minutes starts a combined
// event; an object gets 25 events at once, then one per five minutes.
func TestCorrelator(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	c := newCorrelator()
	w, ok := observeWritten(t, c, podEvent("web", ReasonNoFreeAddress, "full", t0), t0)
	if !ok || w.patch != nil {
		t.Fatalf("first event: ok=%v patch=%s, want a create", ok, w.patch)
	}
	first := w.event.Name
	w, ok = observeWritten(t, c, podEvent("web", ReasonNoFreeAddress, "full", t0.Add(time.Second)), t0.Add(time.Second))
	var p map[string]any
	if !ok || w.patch == nil || json.Unmarshal(w.patch, &p) != nil || p["count"] != float64(2) || w.event.Name != first || len(p) != 3 {
		t.Fatalf("repeated event: ok=%v name %s (first %s) patch %s, want a patch of count 2 to the first", ok, w.event.Name, first, w.patch)
	}
	if !w.event.FirstTimestamp.Equal(&metav1.Time{Time: t0}) {
		t.Fatalf("the repeated event's firstTimestamp moved to %s", w.event.FirstTimestamp)
	}
	// Another pod is another object: its own event.
	if w, _ := observeWritten(t, c, podEvent("db", ReasonNoFreeAddress, "full", t0), t0); w.patch != nil {
		t.Fatalf("another pod's event patched %s", w.event.Name)
	}

	// Different messages: 8 more on web make 9 distinct; the 10th is combined, and so is the 11th, into one event.
	now := t0.Add(2 * time.Second)
	for i := range 8 {
		if w, _ := observeWritten(t, c, podEvent("web", ReasonNoFreeAddress, fmt.Sprint("m", i), now), now); strings.HasPrefix(w.event.Message, combinedPrefix) {
			t.Fatalf("message %d combined before the tenth", i+2)
		}
	}
	w, _ = observeWritten(t, c, podEvent("web", ReasonNoFreeAddress, "tenth", now), now)
	if w.event.Message != combinedPrefix+"tenth" || w.patch != nil {
		t.Fatalf("tenth message: %q patch %s, want a new combined event", w.event.Message, w.patch)
	}
	combined := w.event.Name
	w, _ = observeWritten(t, c, podEvent("web", ReasonNoFreeAddress, "eleventh", now), now)
	if w.patch == nil || w.event.Name != combined || w.event.Message != combinedPrefix+"eleventh" {
		t.Fatalf("eleventh message: %q on %s patch %s, want a patch of the combined event %s", w.event.Message, w.event.Name, w.patch, combined)
	}
	// After ten quiet minutes the messages count from zero again.
	later := now.Add(SimilarWindow + time.Second)
	if w, _ := observeWritten(t, c, podEvent("web", ReasonNoFreeAddress, "again", later), later); strings.HasPrefix(w.event.Message, combinedPrefix) {
		t.Fatalf("combined after the window: %q", w.event.Message)
	}

	// Spam: 25 at once per object, then one per SpamInterval.
	c = newCorrelator()
	for i := range SpamBurst {
		if _, ok := observeWritten(t, c, podEvent("x", "R", fmt.Sprint(i%3), t0), t0); !ok {
			t.Fatalf("event %d of a burst dropped", i+1)
		}
	}
	if _, ok := observeWritten(t, c, podEvent("x", "R", "0", t0), t0); ok {
		t.Fatal("event 26 of a burst kept")
	}
	if _, ok := observeWritten(t, c, podEvent("y", "R", "0", t0), t0); !ok {
		t.Fatal("another object's event dropped with the first's")
	}
	if _, ok := observeWritten(t, c, podEvent("x", "R", "0", t0.Add(SpamInterval/2)), t0.Add(SpamInterval/2)); ok {
		t.Fatal("kept an event before a token came back")
	}
	if _, ok := observeWritten(t, c, podEvent("x", "R", "0", t0.Add(SpamInterval)), t0.Add(SpamInterval)); !ok {
		t.Fatal("dropped an event after SpamInterval")
	}
}
