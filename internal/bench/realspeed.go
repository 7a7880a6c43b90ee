package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/ipam"
)

// realSpeedFactor is how much slower than the churn lab's trace a cluster lives: the real-speed
// variant plays the same trace at that speed with the agents' default timers (issue 16 item 2).
const realSpeedFactor = 10

// realSpeedConfigs are the settings the real-speed variant plays: those issue 16 gives upstream
// real-speed figures for, WARM_IP_TARGET=3 with MINIMUM_IP_TARGET=10 (upstream's figures are
// the scaled trace's only: no reference), and the adaptive mode against its targets (90 %
// utilisation, 99 % warm, under 0.2 calls per pod), on both traces (bursty set).
var realSpeedConfigs = []churnConfig{
	{"default (WARM_ENI_TARGET=1)", map[string]string{}, &upstreamFigures{35.8, 100, 0.57, "100 %"}, false},
	{"WARM_IP_TARGET=3", map[string]string{"WARM_IP_TARGET": "3"}, &upstreamFigures{70.4, 95.5, 1.10, "95.5 %"}, false},
	{"WARM_IP_TARGET=3, MINIMUM_IP_TARGET=10", map[string]string{"WARM_IP_TARGET": "3", "MINIMUM_IP_TARGET": "10"}, nil, false},
	{"VPCNET_WARM_POOL=adaptive", map[string]string{"VPCNET_WARM_POOL": "adaptive"}, nil, true},
}

// slowed is the trace with every moment realSpeedFactor times later: the same pods, nodes and
// order, ten times slower.
func slowed(trace []TraceEvent) []TraceEvent {
	out := make([]TraceEvent, len(trace))
	for i, ev := range trace {
		ev.At *= realSpeedFactor
		out[i] = ev
	}
	return out
}

// runChurnRealSpeed plays the churn trace ten times slower (450 s) once per setting of
// realSpeedConfigs, and the bursty trace for those marked bursty, with the agents' default
// timers (IP_COOLDOWN_PERIOD, VPCNET_POOL_RELEASE_DELAY, VPCNET_RESYNC_PERIOD: 30 s each;
// VPCNET_WARM_ENI_RELEASE_DELAY 10 s), so
// that what the timers cost in EC2 calls and held addresses is not scaled away. CI's short run
// plays the short churn trace only.
func runChurnRealSpeed(ctx context.Context, r *runner) error {
	lab := 0
	for ti, tr := range ChurnTraces(r.opts.Short) {
		trace := slowed(Trace(tr.Spec))
		var per []string
		for _, cfg := range realSpeedConfigs {
			if ti > 0 && !cfg.bursty {
				continue
			}
			l, err := r.up(ctx, labSpec{suffix: fmt.Sprintf("r%d", lab), instanceType: "m5.large", nodes: tr.Spec.Nodes,
				subnet: mustPrefix("10.10.0.0/20"), agent: cfg.agent})
			lab++
			if err != nil {
				return err
			}
			o, err := playTrace(ctx, r, l, trace)
			if derr := r.down(l); err == nil {
				err = derr
			}
			if err != nil {
				return fmt.Errorf("%s real speed %s: %w", tr.Name, cfg.label, err)
			}
			sfx := churnSuffix(cfg, realSpeedFactor, ti)
			r.progress(fmt.Sprintf("%s: utilisation %.1f%%, warm %.1f%%, %.3f EC2 calls per pod, ready p99 %.0f ms", sfx, o.utilisation, o.warm, o.callsPerPod, o.readyP99))
			r.add(settingRows(cfg, ti == 0, realSpeedFactor, sfx, o, nil, r.opts.Short)...)
			// 30 s: the agents' default IP_COOLDOWN_PERIOD.
			if err := r.addBound(tr, realSpeedFactor, cfg, 30*time.Second, sfx, o); err != nil {
				return err
			}
			per = append(per, fmt.Sprintf("%s: %d starts (%d waited for an address, %d retried), %.0f EC2 calls (%s)", cfg.label, o.starts, o.waited, o.retried, o.calls, byAction(o.byAction)))
		}
		spec := tr.Spec
		r.note("%s, real speed: the %s trace (seed %d, %d events) played %d times slower, over %s on 3 × m5.large, with the agents' default timers (IP_COOLDOWN_PERIOD, VPCNET_POOL_RELEASE_DELAY and VPCNET_RESYNC_PERIOD 30 s, VPCNET_WARM_ENI_RELEASE_DELAY %s); measured as the churn rows (%s).%s%s",
			tr.Name, tr.Name, spec.Seed, len(trace), realSpeedFactor, spec.Duration*realSpeedFactor, ipam.DefaultWarmENIReleaseDelay, strings.Join(per, "; "), boundNote, traceNote(ti == 0, r.opts.Short, spec))
	}
	return nil
}

// restWindow is how long the rest scenario watches nodes whose pods do not change.
func restWindow(short bool) time.Duration {
	if short {
		return 15 * time.Second
	}
	return 2 * time.Minute
}

// runRest measures what a node whose pods do not change costs EC2 (issue 16 item 2): three
// m5.large nodes with the default settings and 5 pods each, once their pools have settled
// (no EC2 call for 10 s), are watched for restWindow; their EC2 calls (vpcnet_ec2_calls_total,
// IMDS reads left out) are turned into calls per node per hour. The detached-ENI sweep is set
// beyond the window (VPCNET_DETACHED_ENI_SWEEP=1000h) and counted apart: one
// DescribeNetworkInterfaces per node per VPCNET_DETACHED_ENI_SWEEP (1 h by default).
func runRest(ctx context.Context, r *runner) error {
	const nodesN, podsPerNode = 3, 5
	l, err := r.up(ctx, labSpec{suffix: "z", instanceType: "m5.large", nodes: nodesN, subnet: mustPrefix("10.10.0.0/20"),
		agent: map[string]string{"VPCNET_DETACHED_ENI_SWEEP": "1000h"}})
	if err != nil {
		return err
	}
	defer func() { _ = r.down(l) }()
	nodes, err := l.nodes(ctx)
	if err != nil {
		return err
	}
	for i, n := range nodes {
		rt, err := vpcnetRuntime(l, n)
		if err != nil {
			return err
		}
		made, err := manyPods(ctx, l, rt, fmt.Sprintf("z%d", i), podsPerNode, 4)
		defer removePods(context.WithoutCancel(ctx), rt, made, 4)
		if err != nil {
			return err
		}
	}
	// Settled: no call for 10 s (the pool's growth and its release delay are over).
	total := func() (float64, map[string]float64, error) {
		by, err := ec2Calls(ctx, nodes)
		var t float64
		for _, v := range by {
			t += v
		}
		return t, by, err
	}
	prev, _, err := total()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for quiet := time.Now(); time.Since(quiet) < 10*time.Second; {
		if time.Now().After(deadline) {
			return fmt.Errorf("rest: the nodes' pools did not settle within 3 minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		cur, _, err := total()
		if err != nil {
			return err
		}
		if cur != prev {
			prev, quiet = cur, time.Now()
		}
	}
	w := restWindow(r.opts.Short)
	before, by0, err := total()
	if err != nil {
		return err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(w):
	}
	after, by1, err := total()
	if err != nil {
		return err
	}
	took := time.Since(t0)
	perHour := (after - before) / nodesN / took.Hours()
	diff := map[string]float64{}
	for a, v := range by1 {
		if d := v - by0[a]; d > 0 {
			diff[a] = d
		}
	}
	r.add(NewRow("rest", "EC2 calls per node per hour at rest, sweep apart", "calls", perHour, NoReference, 0, &Target{OnValue: true, Op: "<=", Limit: 0}))
	r.note("rest: %d × m5.large, default settings, %d pods a node, settled (no call for 10 s), then watched for %s: %.0f EC2 calls (%s), IMDS reads left out; the detached-ENI sweep adds one DescribeNetworkInterfaces per node per VPCNET_DETACHED_ENI_SWEEP (1 h by default, ±25 %%), set beyond the window here.",
		nodesN, podsPerNode, took.Round(time.Second), after-before, byAction(diff))
	return nil
}
