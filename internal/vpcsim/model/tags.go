package model

import "strings"

// TagsInput adds or removes tags on resources of any kind (vpc-, subnet-, i-, eni-).
// For DeleteTags a tag with an empty Value and ValueSet false removes the key whatever its value.
type TagsInput struct {
	ResourceIDs []string
	Tags        []Tag
	// ValueSet, parallel to Tags, says whether DeleteTags named a value.
	ValueSet []bool `json:",omitempty"`
}

func (m *Model) tagsOf(id string) (*Tags, *Error) {
	var kind string
	switch {
	case strings.HasPrefix(id, "eni-attach-"):
		kind = ""
	case strings.HasPrefix(id, "eni-"):
		kind = "eni"
		if e, ok := m.st.ENIs[id]; ok {
			return &e.Tags, nil
		}
	case strings.HasPrefix(id, "subnet-"):
		kind = "subnet"
		if s, ok := m.st.Subnets[id]; ok {
			return &s.Tags, nil
		}
	case strings.HasPrefix(id, "vpc-"):
		kind = "vpc"
		if v, ok := m.st.VPCs[id]; ok {
			return &v.Tags, nil
		}
	case strings.HasPrefix(id, "i-"):
		kind = "instance"
		if i, ok := m.st.Instances[id]; ok {
			return &i.Tags, nil
		}
	}
	if kind == "" {
		return nil, Errf("InvalidID", "The ID '%s' is not valid", id)
	}
	return nil, notFound(kind, id)
}

// CreateTags adds or overwrites tags on every resource, or changes nothing on error.
func (m *Model) CreateTags(in TagsInput) error {
	if len(in.ResourceIDs) == 0 {
		return Missing("ResourceId")
	}
	if len(in.Tags) == 0 {
		return Missing("Tag")
	}
	var targets []*Tags
	for _, id := range in.ResourceIDs {
		t, err := m.tagsOf(id)
		if err != nil {
			return err
		}
		added := 0
		for _, tg := range in.Tags {
			if _, ok := (*t)[tg.Key]; !ok {
				added++
			}
		}
		if err := checkTags(in.Tags, len(*t)+added-len(in.Tags)); err != nil {
			return err
		}
		targets = append(targets, t)
	}
	for _, t := range targets {
		if *t == nil {
			*t = Tags{}
		}
		for _, tg := range in.Tags {
			(*t)[tg.Key] = tg.Value
		}
	}
	return nil
}

// DeleteTags removes tags; with no tags given it removes them all.
func (m *Model) DeleteTags(in TagsInput) error {
	if len(in.ResourceIDs) == 0 {
		return Missing("ResourceId")
	}
	for _, tg := range in.Tags {
		if err := checkReservedKey(tg.Key); err != nil {
			return err
		}
	}
	var targets []*Tags
	for _, id := range in.ResourceIDs {
		t, err := m.tagsOf(id)
		if err != nil {
			return err
		}
		targets = append(targets, t)
	}
	for _, t := range targets {
		if len(in.Tags) == 0 {
			*t = nil
			continue
		}
		for i, tg := range in.Tags {
			v, ok := (*t)[tg.Key]
			valueSet := i < len(in.ValueSet) && in.ValueSet[i]
			if ok && (!valueSet || v == tg.Value) {
				delete(*t, tg.Key)
			}
		}
		if len(*t) == 0 {
			*t = nil
		}
	}
	return nil
}
