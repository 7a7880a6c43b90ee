package bench

import "github.com/vpcnet/vpcnet/internal/bench/churntrace"

// TraceSpec describes a churn trace (churntrace.Spec).
type TraceSpec = churntrace.Spec

// TraceEvent starts or stops one pod (churntrace.Event).
type TraceEvent = churntrace.Event

// Trace returns the events of spec in time order (churntrace.Generate).
func Trace(spec TraceSpec) []TraceEvent { return churntrace.Generate(spec) }
