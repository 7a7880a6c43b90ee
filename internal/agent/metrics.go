package agent

import (
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vpcnet/vpcnet/internal/cloud"
)

// Registry holds the agent's Prometheus metrics, all named vpcnet_*.
type Registry struct {
	reg        *prometheus.Registry
	ec2Calls   *prometheus.CounterVec
	ec2Errors  *prometheus.CounterVec
	ec2Latency *prometheus.HistogramVec
	ec2Tries   *prometheus.CounterVec
	rpcCalls   *prometheus.CounterVec
	rpcLatency *prometheus.HistogramVec
	exhausted  prometheus.Counter
	addWaited  prometheus.Counter
}

// NewRegistry makes the metrics; pass Observer() to the cloud client and the registry to New.
func NewRegistry() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.ec2Calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vpcnet_ec2_calls_total", Help: "EC2 and IMDS calls by action (retries inside a call not counted)."}, []string{"action"})
	r.ec2Errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vpcnet_ec2_errors_total", Help: "EC2 calls that failed after retries, by action and error code."}, []string{"action", "code"})
	r.ec2Latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vpcnet_ec2_call_duration_seconds", Help: "EC2 call latency by action, retries included.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, []string{"action"})
	r.ec2Tries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vpcnet_ec2_attempts_total", Help: "HTTP attempts to EC2 by action, retries included."}, []string{"action"})
	r.rpcCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vpcnet_cni_requests_total", Help: "Plugin requests by operation (add, del, check, gc) and gRPC result code."}, []string{"op", "code"})
	r.rpcLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vpcnet_cni_request_duration_seconds", Help: "Plugin request latency by operation.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9)}, []string{"op"})
	r.exhausted = prometheus.NewCounter(prometheus.CounterOpts{Name: "vpcnet_subnet_exhausted_total", Help: "Times EC2 answered InsufficientFreeAddressesInSubnet."})
	r.addWaited = prometheus.NewCounter(prometheus.CounterOpts{Name: "vpcnet_add_waited_total", Help: "ADDs served an address only after waiting for one the pool fetched (VPCNET_ADD_WAIT): not warm."})
	r.reg.MustRegister(r.addWaited, r.ec2Calls, r.ec2Errors, r.ec2Latency, r.ec2Tries, r.rpcCalls, r.rpcLatency, r.exhausted,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Observer feeds the EC2 metrics; give it to cloud.Config.
func (r *Registry) Observer() cloud.Observer {
	return cloud.Observer{
		Call: func(action string, took time.Duration, err error) {
			r.ec2Calls.WithLabelValues(action).Inc()
			r.ec2Latency.WithLabelValues(action).Observe(took.Seconds())
			if err != nil {
				r.ec2Errors.WithLabelValues(action, errorCode(err)).Inc()
			}
		},
		Attempt: func(action string) { r.ec2Tries.WithLabelValues(action).Inc() },
	}
}

// errorCode is the EC2 code of err, or "unreachable" for a transport failure, or "other".
func errorCode(err error) string {
	if c := cloud.Code(err); c != "" {
		return c
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "unreachable"
	}
	return "other"
}

// watch registers the gauges that read the pool on every scrape.
func (r *Registry) watch(a *Agent) {
	gauge := func(name, help string, f func(view) float64) {
		r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(a.view()) }))
	}
	gauge("vpcnet_enis", "ENIs attached to the node and used for pods.", func(v view) float64 { return float64(v.sum.ENIs) })
	gauge("vpcnet_addresses", "Pod addresses the node holds (secondary IPs and prefix addresses).", func(v view) float64 { return float64(v.sum.Total) })
	gauge("vpcnet_addresses_assigned", "Pod addresses held by pods.", func(v view) float64 { return float64(v.sum.Assigned) })
	gauge("vpcnet_addresses_warm", "Pod addresses free to hand out now.", func(v view) float64 { return float64(v.sum.Free) })
	gauge("vpcnet_addresses_cooldown", "Released addresses resting for IP_COOLDOWN_PERIOD.", func(v view) float64 { return float64(v.sum.Cooldown) })
	gauge("vpcnet_prefixes", "Delegated /28 prefixes the node holds.", func(v view) float64 { return float64(v.sum.Prefixes) })
	gauge("vpcnet_max_pods", "Pod addresses the node can hold (its ENIs it may manage, their free slots, prefix mode, MAX_PODS); kubelet's maxPods is this plus its host-network pods.", func(v view) float64 { return float64(v.capacity.Pods) })
	gauge("vpcnet_subnet_free_addresses", "Free addresses in the node's subnet, as EC2 last said.", func(v view) float64 { return float64(v.subnetFree) })
	gauge("vpcnet_pods_without_cloud_address", "Pods whose address EC2 no longer assigns to the node (an ENI or address taken away outside vpcnet).", func(v view) float64 { return float64(len(v.status.PodsWithoutCloudAddress)) })
	sizing := func(f func(*PoolSizing) float64) func(view) float64 {
		return func(v view) float64 {
			if v.status.Pool == nil {
				return 0
			}
			return f(v.status.Pool)
		}
	}
	gauge("vpcnet_pool_target_free", "Adaptive mode: free addresses the pool keeps, sized from the pod start rate and the replenish latency (0 in the AWS modes).", sizing(func(p *PoolSizing) float64 { return float64(p.TargetFree) }))
	gauge("vpcnet_pod_start_rate", "Adaptive mode: pod starts (ADDs) per second over the last 30 s.", sizing(func(p *PoolSizing) float64 { return p.StartRate }))
	gauge("vpcnet_replenish_latency_seconds", "Adaptive mode: median time of the recent grows, from the request to usable addresses.", sizing(func(p *PoolSizing) float64 { return p.ReplenishSeconds }))
	gauge("vpcnet_ready", "1 when the node's pod network works (the agent started); an address may still have to be fetched.", func(v view) float64 {
		if v.status.Ready {
			return 1
		}
		return 0
	})
	r.reg.MustRegister(statusCollector{a})
}

// statusCollector reports vpcnet_status{reason} = 1 for the current reason.
type statusCollector struct{ a *Agent }

var statusDesc = prometheus.NewDesc("vpcnet_status", "1 for the agent's current status reason (\"ready\" when an ADD gets an address now).", []string{"reason"}, nil)

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- statusDesc }
func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.view().status
	reason := st.Reason
	if reason == "" {
		reason = "ready"
	}
	ch <- prometheus.MustNewConstMetric(statusDesc, prometheus.GaugeValue, 1, reason)
}
