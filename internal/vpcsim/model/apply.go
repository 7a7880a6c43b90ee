package model

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"
)

// Mutation is the input of a call that changes the model: a value of, or a pointer to, one of
// the input types registered in the mutation table below. Mutations are what a journal
// records: applying the same mutations at the same times to the same state gives the same state.
type Mutation any

// mutationDef is one registered mutation: its action name (as EC2 spells it; CompleteAttachment
// and CompleteDetachment are vpcsim's own), its input type, and how it changes the model.
type mutationDef struct {
	action string
	typ    reflect.Type
	decode func(data []byte) (Mutation, error)
	apply  func(m *Model, now time.Time, mu Mutation) (any, []Event, error)
}

var (
	byAction = map[string]*mutationDef{}
	byType   = map[reflect.Type]*mutationDef{}
)

// register adds a mutation: its action name, its input type T (from apply's signature) and what
// it does. It is the only place a mutation is declared; ActionOf, DecodeMutation and Apply all
// read this table, so no mutation can be applied but not journalled, or journalled but not
// replayed.
func register[T any](action string, apply func(m *Model, now time.Time, in T) (any, []Event, error)) {
	d := &mutationDef{action: action, typ: reflect.TypeFor[T]()}
	d.decode = func(data []byte) (Mutation, error) {
		in := new(T)
		if err := json.Unmarshal(data, in); err != nil {
			return nil, err
		}
		return in, nil
	}
	d.apply = func(m *Model, now time.Time, mu Mutation) (any, []Event, error) {
		switch in := mu.(type) {
		case *T:
			return apply(m, now, *in)
		case T:
			return apply(m, now, in)
		}
		return nil, nil, fmt.Errorf("mutation %s: input %T", action, mu)
	}
	if byAction[action] != nil || byType[d.typ] != nil {
		panic(fmt.Sprintf("model: mutation %s (%v) registered twice", action, d.typ))
	}
	byAction[action], byType[d.typ] = d, d
}

// DeleteNetworkInterfaceInput deletes an available ENI.
type DeleteNetworkInterfaceInput struct{ ENIID string }

// CreateTagsInput and DeleteTagsInput are TagsInput under the names of their actions.
type (
	CreateTagsInput TagsInput
	DeleteTagsInput TagsInput
)

// The mutation table: one registration per mutation.
func init() {
	register("CreateVpc", func(m *Model, now time.Time, in CreateVpcInput) (any, []Event, error) {
		out, err := m.CreateVpc(now, in)
		return out, nil, err
	})
	register("CreateSubnet", func(m *Model, now time.Time, in CreateSubnetInput) (any, []Event, error) {
		out, err := m.CreateSubnet(now, in)
		return out, nil, err
	})
	register("RunInstances", func(m *Model, now time.Time, in RunInstancesInput) (any, []Event, error) {
		return m.RunInstances(now, in)
	})
	register("TerminateInstances", func(m *Model, _ time.Time, in TerminateInstancesInput) (any, []Event, error) {
		return m.TerminateInstances(in)
	})
	register("CreateNetworkInterface", func(m *Model, now time.Time, in CreateNetworkInterfaceInput) (any, []Event, error) {
		return m.CreateNetworkInterface(now, in)
	})
	register("DeleteNetworkInterface", func(m *Model, _ time.Time, in DeleteNetworkInterfaceInput) (any, []Event, error) {
		ev, err := m.DeleteNetworkInterface(in.ENIID)
		return nil, ev, err
	})
	register("AttachNetworkInterface", func(m *Model, now time.Time, in AttachNetworkInterfaceInput) (any, []Event, error) {
		return m.AttachNetworkInterface(now, in)
	})
	register("DetachNetworkInterface", func(m *Model, _ time.Time, in DetachNetworkInterfaceInput) (any, []Event, error) {
		ev, err := m.DetachNetworkInterface(in)
		return nil, ev, err
	})
	register("CompleteAttachment", func(m *Model, _ time.Time, in CompleteAttachmentInput) (any, []Event, error) {
		ev, err := m.CompleteAttachment(in)
		return nil, ev, err
	})
	register("CompleteDetachment", func(m *Model, _ time.Time, in CompleteDetachmentInput) (any, []Event, error) {
		ev, err := m.CompleteDetachment(in)
		return nil, ev, err
	})
	register("ModifyNetworkInterfaceAttribute", func(m *Model, _ time.Time, in ModifyNetworkInterfaceAttributeInput) (any, []Event, error) {
		return nil, nil, m.ModifyNetworkInterfaceAttribute(in)
	})
	register("AssignPrivateIpAddresses", func(m *Model, _ time.Time, in AssignPrivateIpAddressesInput) (any, []Event, error) {
		return m.AssignPrivateIpAddresses(in)
	})
	register("UnassignPrivateIpAddresses", func(m *Model, _ time.Time, in UnassignPrivateIpAddressesInput) (any, []Event, error) {
		ev, err := m.UnassignPrivateIpAddresses(in)
		return nil, ev, err
	})
	register("CreateTags", func(m *Model, _ time.Time, in CreateTagsInput) (any, []Event, error) {
		return nil, nil, m.CreateTags(TagsInput(in))
	})
	register("DeleteTags", func(m *Model, _ time.Time, in DeleteTagsInput) (any, []Event, error) {
		return nil, nil, m.DeleteTags(TagsInput(in))
	})
}

func lookup(mu Mutation) *mutationDef {
	t := reflect.TypeOf(mu)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return byType[t]
}

// ActionOf names a mutation's action, as the journal records it; "" for a value that is not a
// registered mutation.
func ActionOf(mu Mutation) string {
	if d := lookup(mu); d != nil {
		return d.action
	}
	return ""
}

// MutationActions lists every registered mutation's action, sorted.
func MutationActions() []string {
	out := make([]string, 0, len(byAction))
	for a := range byAction {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// DecodeMutation rebuilds a journalled mutation from its action name and JSON.
func DecodeMutation(action string, data []byte) (Mutation, error) {
	d, ok := byAction[action]
	if !ok {
		return nil, fmt.Errorf("unknown mutation %q", action)
	}
	mu, err := d.decode(data)
	if err != nil {
		return nil, fmt.Errorf("mutation %s: %w", action, err)
	}
	return mu, nil
}

// Apply carries out a mutation at time now. It returns the action's result, the events for
// the data plane in order, or an error having changed nothing.
func (m *Model) Apply(now time.Time, mu Mutation) (out any, ev []Event, err error) {
	d := lookup(mu)
	if d == nil {
		return nil, nil, fmt.Errorf("unknown mutation %T", mu)
	}
	out, ev, err = d.apply(m, now.UTC().Truncate(time.Millisecond), mu)
	if err != nil {
		return nil, nil, err
	}
	return out, ev, nil
}
