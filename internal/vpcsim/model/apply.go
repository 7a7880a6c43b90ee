package model

import (
	"encoding/json"
	"fmt"
	"time"
)

// Mutation is the input of a call that changes the model. Mutations are what a journal
// records: applying the same mutations at the same times to the same state gives the same state.
type Mutation interface{ Action() string }

// DeleteNetworkInterfaceInput deletes an available ENI.
type DeleteNetworkInterfaceInput struct{ ENIID string }

// CreateTagsInput and DeleteTagsInput are TagsInput under the names of their actions.
type (
	CreateTagsInput TagsInput
	DeleteTagsInput TagsInput
)

// Action names, as EC2 spells them; CompleteAttachment and CompleteDetachment are vpcsim's own.
func (CreateVpcInput) Action() string                       { return "CreateVpc" }
func (CreateSubnetInput) Action() string                    { return "CreateSubnet" }
func (RunInstancesInput) Action() string                    { return "RunInstances" }
func (TerminateInstancesInput) Action() string              { return "TerminateInstances" }
func (CreateNetworkInterfaceInput) Action() string          { return "CreateNetworkInterface" }
func (DeleteNetworkInterfaceInput) Action() string          { return "DeleteNetworkInterface" }
func (AttachNetworkInterfaceInput) Action() string          { return "AttachNetworkInterface" }
func (DetachNetworkInterfaceInput) Action() string          { return "DetachNetworkInterface" }
func (CompleteAttachmentInput) Action() string              { return "CompleteAttachment" }
func (CompleteDetachmentInput) Action() string              { return "CompleteDetachment" }
func (ModifyNetworkInterfaceAttributeInput) Action() string { return "ModifyNetworkInterfaceAttribute" }
func (AssignPrivateIpAddressesInput) Action() string        { return "AssignPrivateIpAddresses" }
func (UnassignPrivateIpAddressesInput) Action() string      { return "UnassignPrivateIpAddresses" }
func (CreateTagsInput) Action() string                      { return "CreateTags" }
func (DeleteTagsInput) Action() string                      { return "DeleteTags" }

var mutations = map[string]func() Mutation{
	"CreateVpc":                       func() Mutation { return &CreateVpcInput{} },
	"CreateSubnet":                    func() Mutation { return &CreateSubnetInput{} },
	"RunInstances":                    func() Mutation { return &RunInstancesInput{} },
	"TerminateInstances":              func() Mutation { return &TerminateInstancesInput{} },
	"CreateNetworkInterface":          func() Mutation { return &CreateNetworkInterfaceInput{} },
	"DeleteNetworkInterface":          func() Mutation { return &DeleteNetworkInterfaceInput{} },
	"AttachNetworkInterface":          func() Mutation { return &AttachNetworkInterfaceInput{} },
	"DetachNetworkInterface":          func() Mutation { return &DetachNetworkInterfaceInput{} },
	"CompleteAttachment":              func() Mutation { return &CompleteAttachmentInput{} },
	"CompleteDetachment":              func() Mutation { return &CompleteDetachmentInput{} },
	"ModifyNetworkInterfaceAttribute": func() Mutation { return &ModifyNetworkInterfaceAttributeInput{} },
	"AssignPrivateIpAddresses":        func() Mutation { return &AssignPrivateIpAddressesInput{} },
	"UnassignPrivateIpAddresses":      func() Mutation { return &UnassignPrivateIpAddressesInput{} },
	"CreateTags":                      func() Mutation { return &CreateTagsInput{} },
	"DeleteTags":                      func() Mutation { return &DeleteTagsInput{} },
}

// DecodeMutation rebuilds a journalled mutation from its action name and JSON.
func DecodeMutation(action string, data []byte) (Mutation, error) {
	f, ok := mutations[action]
	if !ok {
		return nil, fmt.Errorf("unknown mutation %q", action)
	}
	mu := f()
	if err := json.Unmarshal(data, mu); err != nil {
		return nil, fmt.Errorf("mutation %s: %w", action, err)
	}
	return mu, nil
}

// Apply carries out a mutation at time now. It returns the action's result, the events for
// the data plane in order, or an error having changed nothing.
func (m *Model) Apply(now time.Time, mu Mutation) (out any, ev []Event, err error) {
	now = now.UTC().Truncate(time.Millisecond)
	switch in := deref(mu).(type) {
	case CreateVpcInput:
		out, err = m.CreateVpc(now, in)
	case CreateSubnetInput:
		out, err = m.CreateSubnet(now, in)
	case RunInstancesInput:
		out, ev, err = m.RunInstances(now, in)
	case TerminateInstancesInput:
		out, ev, err = m.TerminateInstances(in)
	case CreateNetworkInterfaceInput:
		out, ev, err = m.CreateNetworkInterface(now, in)
	case DeleteNetworkInterfaceInput:
		ev, err = m.DeleteNetworkInterface(in.ENIID)
	case AttachNetworkInterfaceInput:
		out, ev, err = m.AttachNetworkInterface(now, in)
	case DetachNetworkInterfaceInput:
		ev, err = m.DetachNetworkInterface(in)
	case CompleteAttachmentInput:
		ev, err = m.CompleteAttachment(in)
	case CompleteDetachmentInput:
		ev, err = m.CompleteDetachment(in)
	case ModifyNetworkInterfaceAttributeInput:
		err = m.ModifyNetworkInterfaceAttribute(in)
	case AssignPrivateIpAddressesInput:
		out, ev, err = m.AssignPrivateIpAddresses(in)
	case UnassignPrivateIpAddressesInput:
		ev, err = m.UnassignPrivateIpAddresses(in)
	case CreateTagsInput:
		err = m.CreateTags(TagsInput(in))
	case DeleteTagsInput:
		err = m.DeleteTags(TagsInput(in))
	default:
		return nil, nil, fmt.Errorf("unknown mutation %T", mu)
	}
	if err != nil {
		return nil, nil, err
	}
	return out, ev, nil
}

func deref(mu Mutation) Mutation {
	switch p := mu.(type) {
	case *CreateVpcInput:
		return *p
	case *CreateSubnetInput:
		return *p
	case *RunInstancesInput:
		return *p
	case *TerminateInstancesInput:
		return *p
	case *CreateNetworkInterfaceInput:
		return *p
	case *DeleteNetworkInterfaceInput:
		return *p
	case *AttachNetworkInterfaceInput:
		return *p
	case *DetachNetworkInterfaceInput:
		return *p
	case *CompleteAttachmentInput:
		return *p
	case *CompleteDetachmentInput:
		return *p
	case *ModifyNetworkInterfaceAttributeInput:
		return *p
	case *AssignPrivateIpAddressesInput:
		return *p
	case *UnassignPrivateIpAddressesInput:
		return *p
	case *CreateTagsInput:
		return *p
	case *DeleteTagsInput:
		return *p
	}
	return mu
}
