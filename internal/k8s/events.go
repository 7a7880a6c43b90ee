package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// The agent's events (core/v1 Event, as `kubectl describe` lists them) follow the rules of
// client-go's event recorder (k8s.io/client-go/tools/record), which the agent used before and
// which kubelet's events follow, without linking it: the recorder's patch builder alone brings
// the OpenAPI models and their YAML and JSON schema parsers, about 1.2 MiB of the agent's
// resident memory (issue 16 item 7). The rules:
//
//   - an event repeated (same object, type, reason, message and source) is not created again:
//     the first one's count goes up and its lastTimestamp moves, in one patch;
//   - once one object has had MaxSimilarEvents events of one type and reason with different
//     messages within SimilarWindow, further ones are folded into one event whose message
//     starts with "(combined from similar events): ";
//   - each object gets at most SpamBurst events at once, then one per SpamInterval (a token
//     bucket per source and object); the rest are dropped;
//   - events wait in a queue of EventQueue; when it is full a new event is dropped, so pod
//     networking never waits on the API server;
//   - a write that did not reach the API server is tried again up to EventTries times in all,
//     EventRetryWait apart (the first wait jittered); one the API server refused is not; a
//     patch of an event the API server no longer has creates it again.
const (
	MaxSimilarEvents = 10
	SimilarWindow    = 10 * time.Minute
	SpamBurst        = 25
	SpamInterval     = 5 * time.Minute
	EventQueue       = 1000
	EventTries       = 12
	eventCacheSize   = 4096 // events remembered for counting, oldest forgotten first
	combinedPrefix   = "(combined from similar events): "
)

// EventRetryWait is the time between two tries of an event write.
var EventRetryWait = 10 * time.Second

// objectKey names an event's source and object.
func objectKey(e *Event) string {
	o := e.InvolvedObject
	return fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", e.Source.Component, e.Source.Host, o.Kind, o.Namespace, o.Name, o.UID, o.APIVersion)
}

// written is an event the API server has, as the correlator remembers it.
type written struct {
	name, namespace string
	count           int32
	first           metav1.Time
	used            time.Time
}

// similar is the record of one object's events of one type and reason with different messages.
type similar struct {
	messages map[string]bool
	last     time.Time
}

// bucket is a token bucket of the spam rule.
type bucket struct {
	tokens float64
	at     time.Time
}

// correlator is the pure core of the rules above: given an event and the time, what to write.
// Only the writer goroutine uses it.
type correlator struct {
	seen    map[string]*written
	similar map[string]*similar
	buckets map[string]*bucket
}

func newCorrelator() *correlator {
	return &correlator{seen: map[string]*written{}, similar: map[string]*similar{}, buckets: map[string]*bucket{}}
}

// write is what to do with an event: create it, or patch the event named name (count and
// lastTimestamp, message).
type write struct {
	key   string // what the correlator remembers the result under
	event *Event
	patch []byte // nil: create event
}

// observe applies the rules to e at now; ok=false means drop it (spam).
func (c *correlator) observe(e *Event, now time.Time) (w write, ok bool) {
	obj := objectKey(e)
	b := c.buckets[obj]
	if b == nil {
		b = &bucket{tokens: SpamBurst, at: now}
		c.buckets[obj] = b
	}
	b.tokens = min(SpamBurst, b.tokens+float64(now.Sub(b.at))/float64(SpamInterval))
	b.at = now
	if b.tokens < 1 {
		return write{}, false
	}
	b.tokens--

	agg := obj + "\x00" + e.Type + "\x00" + e.Reason
	s := c.similar[agg]
	if s == nil || now.Sub(s.last) > SimilarWindow {
		s = &similar{messages: map[string]bool{}}
		c.similar[agg] = s
	}
	s.last = now
	key := agg + "\x00" + e.Message
	s.messages[key] = true
	if len(s.messages) >= MaxSimilarEvents {
		e = e.DeepCopy()
		e.Message = combinedPrefix + e.Message
		key = agg
	}

	if old := c.seen[key]; old != nil {
		old.used = now
		e = e.DeepCopy()
		e.Name, e.Namespace, e.Count, e.FirstTimestamp = old.name, old.namespace, old.count+1, old.first
		patch, _ := json.Marshal(map[string]any{"count": e.Count, "lastTimestamp": e.LastTimestamp, "message": e.Message})
		return write{key: key, event: e, patch: patch}, true
	}
	return write{key: key, event: e}, true
}

// done records that the API server has w's event as e.
func (c *correlator) done(w write, e *Event, now time.Time) {
	c.seen[w.key] = &written{name: e.Name, namespace: e.Namespace, count: e.Count, first: e.FirstTimestamp, used: now}
	if len(c.seen) <= eventCacheSize {
		return
	}
	var oldest string
	for k, v := range c.seen {
		if oldest == "" || v.used.Before(c.seen[oldest].used) {
			oldest = k
		}
	}
	delete(c.seen, oldest)
}

// recorder makes the agent's events and writes them to the API server from one goroutine.
type recorder struct {
	rc     rest.Interface
	source EventSource
	log    *slog.Logger
	queue  chan *Event
}

func newRecorder(rc rest.Interface, source EventSource, log *slog.Logger) *recorder {
	return &recorder{rc: rc, source: source, log: log, queue: make(chan *Event, EventQueue)}
}

// eventf queues an event of type (EventTypeNormal or EventTypeWarning) and reason about ref, its
// message made by fmt.Sprintf; a full queue drops it.
func (r *recorder) eventf(ref *ObjectReference, eventType, reason, format string, args ...any) {
	now := metav1.Now()
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	e := &Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%v.%x", ref.Name, now.UnixNano()), Namespace: ns},
		InvolvedObject:      *ref,
		Reason:              reason,
		Message:             fmt.Sprintf(format, args...),
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Type:                eventType,
		Source:              r.source,
		ReportingController: r.source.Component,
		ReportingInstance:   r.source.Host,
	}
	select {
	case r.queue <- e:
	default:
		r.log.Warn("kubernetes: event queue full; event dropped", "reason", reason, "object", ref.Kind+" "+ref.Namespace+"/"+ref.Name)
	}
}

// run writes the queued events until ctx ends.
func (r *recorder) run(ctx context.Context) {
	c := newCorrelator()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-r.queue:
			w, ok := c.observe(e, time.Now())
			if !ok {
				continue
			}
			for try := 1; ; try++ {
				got, err := r.write(ctx, w)
				if err == nil {
					c.done(w, got, time.Now())
					break
				}
				if final(err) || try == EventTries {
					r.log.Warn("kubernetes: writing an event", "reason", e.Reason, "object", e.InvolvedObject.Kind+" "+e.InvolvedObject.Namespace+"/"+e.InvolvedObject.Name, "tries", try, "err", err)
					break
				}
				wait := EventRetryWait
				if try == 1 {
					wait = time.Duration(rand.Int64N(int64(EventRetryWait))) // spread agents that failed together
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
	}
}

// write creates w's event, or patches it; a patch of an event the API server no longer has
// creates it again, count kept.
func (r *recorder) write(ctx context.Context, w write) (*Event, error) {
	out := &Event{}
	if w.patch != nil {
		err := r.rc.Patch(types.StrategicMergePatchType).Namespace(w.event.Namespace).Resource("events").Name(w.event.Name).Body(w.patch).Do(ctx).Into(out)
		if !apierrors.IsNotFound(err) {
			return out, err
		}
		w.event = w.event.DeepCopy()
		w.event.ResourceVersion = ""
	}
	err := r.rc.Post().Namespace(w.event.Namespace).Resource("events").Body(w.event).Do(ctx).Into(out)
	return out, err
}

// final says whether a write is not to be tried again: the API server answered it (any
// status: invalid, already exists, forbidden, the namespace terminating...), so only network
// errors are retried.
func final(err error) bool {
	var st apierrors.APIStatus
	return errors.As(err, &st)
}
