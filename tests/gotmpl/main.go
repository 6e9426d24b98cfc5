// gotmpl renders Ollama TEMPLATEs with Go's own text/template, fed the way Ollama feeds them.
//
// fwyy's tests use it to prove that each chat family's Ollama TEMPLATE gives the same prompt
// text as the family's Jinja chat template. It reads a JSON array of cases on stdin
// ({"template": "...", "messages": [{"role", "content", "tool_calls", "tool_name"}], "tools": [...]})
// and writes a JSON array of results ({"output": "...", "tool_tag": "..."} or {"error": "..."}).
//
// What it copies from Ollama (template/template.go, api/types.go, tools/template.go; facts only):
// the template is parsed with missingkey=zero and the json/currentDate/yesterdayDate/
// toTypeScriptType functions; messages are collated (consecutive messages of one role merged
// with a blank line, tool messages kept apart); .System is every system message joined with a
// blank line while .Messages still holds them; a template that names .Messages gets System,
// Messages, Tools, Response "" and the Think fields. Tools and tool calls reach the template in
// Ollama's template shapes: structs for the fixed fields, plain Go maps for tool properties and
// call arguments (so a template ranges over them in sorted key order), JSON values decoded as
// encoding/json decodes them (map[string]interface {}, []interface {}, float64, ...). tool_tag is
// the tool-call tag Ollama's parser reads off the template (tools.parseTag), "{" when none.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// PropertyType is a JSON-schema type: a string or a list of strings (api.PropertyType).
type PropertyType []string

func (pt *PropertyType) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*pt = []string{s}
		return nil
	}
	var a []string
	if err := json.Unmarshal(data, &a); err != nil {
		return err
	}
	*pt = a
	return nil
}

func (pt PropertyType) MarshalJSON() ([]byte, error) {
	if len(pt) == 1 {
		return json.Marshal(pt[0])
	}
	return json.Marshal([]string(pt))
}

func (pt PropertyType) String() string {
	if len(pt) == 0 {
		return ""
	}
	if len(pt) == 1 {
		return pt[0]
	}
	return fmt.Sprintf("%v", []string(pt))
}

// ToolPropertiesMap stands for api.ToolPropertiesMap (an ordered map): templates reach nested
// properties only through its ToMap method.
type ToolPropertiesMap struct {
	m map[string]ToolProperty
}

func (t *ToolPropertiesMap) ToMap() map[string]ToolProperty {
	if t == nil {
		return nil
	}
	return t.m
}

func (t *ToolPropertiesMap) UnmarshalJSON(data []byte) error {
	return json.Unmarshal(data, &t.m)
}

func (t ToolPropertiesMap) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.m)
}

type ToolProperty struct {
	AnyOf       []ToolProperty     `json:"anyOf,omitempty"`
	Type        PropertyType       `json:"type,omitempty"`
	Items       any                `json:"items,omitempty"`
	Description string             `json:"description,omitempty"`
	Enum        []any              `json:"enum,omitempty"`
	Properties  *ToolPropertiesMap `json:"properties,omitempty"`
	Required    []string           `json:"required,omitempty"`
}

// inTool is a tool as a client sends it (api.Tool).
type inTool struct {
	Type     string `json:"type"`
	Items    any    `json:"items"`
	Function struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Parameters  struct {
			Type       string                  `json:"type"`
			Defs       any                     `json:"$defs"`
			Items      any                     `json:"items"`
			Required   []string                `json:"required"`
			Properties map[string]ToolProperty `json:"properties"`
		} `json:"parameters"`
	} `json:"function"`
}

type templateTools []templateTool

func (t templateTools) String() string {
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateArgs map[string]any

func (t templateArgs) String() string {
	if t == nil {
		return "{}"
	}
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateProperties map[string]ToolProperty

func (t templateProperties) String() string {
	if t == nil {
		return "{}"
	}
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateTool struct {
	Type     string               `json:"type"`
	Items    any                  `json:"items,omitempty"`
	Function templateToolFunction `json:"function"`
}

func (t templateTool) String() string {
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateToolFunction struct {
	Name        string                         `json:"name"`
	Description string                         `json:"description"`
	Parameters  templateToolFunctionParameters `json:"parameters"`
}

type templateToolFunctionParameters struct {
	Type       string             `json:"type"`
	Defs       any                `json:"$defs,omitempty"`
	Items      any                `json:"items,omitempty"`
	Required   []string           `json:"required,omitempty"`
	Properties templateProperties `json:"properties"`
}

type templateToolCallFunction struct {
	Index     int
	Name      string
	Arguments templateArgs
}

type templateToolCall struct {
	ID       string
	Function templateToolCallFunction
}

// message has the fields of Ollama's templateMessage.
type message struct {
	Role       string
	Content    string
	Thinking   string
	Images     []string
	ToolCalls  []templateToolCall
	ToolName   string
	ToolCallID string
}

type inToolCall struct {
	ID       string `json:"id"`
	Function struct {
		Index     int            `json:"index"`
		Name      string         `json:"name"`
		Arguments map[string]any `json:"arguments"`
	} `json:"function"`
}

type inMessage struct {
	Role       string       `json:"role"`
	Content    string       `json:"content"`
	Thinking   string       `json:"thinking"`
	ToolCalls  []inToolCall `json:"tool_calls"`
	ToolName   string       `json:"tool_name"`
	ToolCallID string       `json:"tool_call_id"`
}

type testCase struct {
	Template string      `json:"template"`
	Messages []inMessage `json:"messages"`
	Tools    []inTool    `json:"tools"`
	Think    bool        `json:"think"`
}

type result struct {
	Output  string `json:"output"`
	ToolTag string `json:"tool_tag"`
	Error   string `json:"error,omitempty"`
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"currentDate":      func(args ...string) string { return time.Now().Format("2006-01-02") },
	"yesterdayDate":    func(args ...string) string { return time.Now().AddDate(0, 0, -1).Format("2006-01-02") },
	"toTypeScriptType": func(v any) string { return "any" },
}

// collate mirrors Ollama: system messages are gathered into one string, and consecutive
// messages of the same role (except tool) are merged into one.
func collate(msgs []inMessage) (string, []*message) {
	var system []string
	var collated []*message
	for _, m := range msgs {
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		if len(collated) > 0 && collated[len(collated)-1].Role == m.Role && m.Role != "tool" {
			collated[len(collated)-1].Content += "\n\n" + m.Content
			continue
		}
		msg := &message{Role: m.Role, Content: m.Content, Thinking: m.Thinking, ToolName: m.ToolName, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, templateToolCall{
				ID: tc.ID,
				Function: templateToolCallFunction{
					Index: tc.Function.Index, Name: tc.Function.Name, Arguments: templateArgs(tc.Function.Arguments),
				},
			})
		}
		collated = append(collated, msg)
	}
	return strings.Join(system, "\n\n"), collated
}

// toolsForTemplate mirrors convertToolsForTemplate: nil without tools.
func toolsForTemplate(tools []inTool) templateTools {
	if tools == nil {
		return nil
	}
	out := make(templateTools, len(tools))
	for i, t := range tools {
		p := t.Function.Parameters
		out[i] = templateTool{
			Type:  t.Type,
			Items: t.Items,
			Function: templateToolFunction{
				Name:        t.Function.Name,
				Description: t.Function.Description,
				Parameters: templateToolFunctionParameters{
					Type: p.Type, Defs: p.Defs, Items: p.Items, Required: p.Required,
					Properties: templateProperties(p.Properties),
				},
			},
		}
	}
	return out
}

func identifiers(n parse.Node) []string {
	switch n := n.(type) {
	case *parse.ListNode:
		var names []string
		for _, c := range n.Nodes {
			names = append(names, identifiers(c)...)
		}
		return names
	case *parse.TemplateNode:
		if n.Pipe == nil {
			return []string{"\x00undefined template"} // Ollama refuses a {{ template }} call without a pipeline
		}
		return identifiers(n.Pipe)
	case *parse.ActionNode:
		return identifiers(n.Pipe)
	case *parse.BranchNode:
		names := identifiers(n.Pipe)
		for _, l := range []*parse.ListNode{n.List, n.ElseList} {
			if l != nil {
				names = append(names, identifiers(l)...)
			}
		}
		return names
	case *parse.IfNode:
		return identifiers(&n.BranchNode)
	case *parse.RangeNode:
		return identifiers(&n.BranchNode)
	case *parse.WithNode:
		return identifiers(&n.BranchNode)
	case *parse.PipeNode:
		var names []string
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				names = append(names, identifiers(a)...)
			}
		}
		return names
	case *parse.FieldNode:
		return n.Ident
	case *parse.VariableNode:
		return n.Ident
	}
	return nil
}

func usesMessages(t *template.Template) bool {
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		for _, n := range tt.Tree.Root.Nodes {
			for _, id := range identifiers(n) {
				if strings.ToLower(id) == "messages" {
					return true
				}
			}
		}
	}
	return false
}

func render(c testCase) result {
	t, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(c.Template)
	if err != nil {
		return result{Error: "parse: " + err.Error()}
	}
	if !usesMessages(t) {
		return result{Error: "the template does not use .Messages (Ollama's legacy .Prompt/.Response path is not emulated)"}
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		for _, id := range identifiers(tt.Tree.Root) {
			if strings.HasPrefix(id, "\x00") {
				return result{Error: "parse: " + id[1:] + " specified"}
			}
		}
	}
	system, msgs := collate(c.Messages)
	var tools any
	if c.Tools != nil {
		tools = toolsForTemplate(c.Tools)
	}
	var b strings.Builder
	err = t.Execute(&b, map[string]any{
		"System":     system,
		"Messages":   msgs,
		"Tools":      tools,
		"Response":   "",
		"Think":      c.Think,
		"ThinkLevel": "",
		"IsThinkSet": false,
	})
	if err != nil {
		return result{Error: "execute: " + err.Error()}
	}
	return result{Output: b.String(), ToolTag: parseTag(t)}
}

// parseTag is Ollama's tools.parseTag: the first text inside the first {{ if }} that names
// .ToolCalls, up to a "{", trimmed; "{" when there is none (then any JSON object counts as a call).
func parseTag(t *template.Template) string {
	if t == nil || t.Tree == nil {
		return "{"
	}
	tc := findToolCallNode(t.Tree.Root.Nodes)
	if tc == nil {
		return "{"
	}
	tn := findTextNode(tc.List.Nodes)
	if tn == nil {
		return "{"
	}
	tag := strings.ReplaceAll(string(tn.Text), "\r\n", "\n")
	if i := strings.Index(tag, "{"); i >= 0 {
		tag = tag[:i]
	}
	tag = strings.TrimSpace(tag)
	if tag == "" {
		return "{"
	}
	return tag
}

func branches(n parse.Node) (*parse.ListNode, *parse.ListNode, bool) {
	switch n := n.(type) {
	case *parse.IfNode:
		return n.List, n.ElseList, true
	case *parse.RangeNode:
		return n.List, n.ElseList, true
	case *parse.WithNode:
		return n.List, n.ElseList, true
	}
	return nil, nil, false
}

func findToolCallNode(nodes []parse.Node) *parse.IfNode {
	for _, node := range nodes {
		if n, ok := node.(*parse.IfNode); ok {
			for _, cmd := range n.Pipe.Cmds {
				for _, arg := range cmd.Args {
					if f, ok := arg.(*parse.FieldNode); ok {
						for _, id := range f.Ident {
							if id == "ToolCalls" {
								return n
							}
						}
					}
				}
			}
		}
		if l, ok := node.(*parse.ListNode); ok {
			if r := findToolCallNode(l.Nodes); r != nil {
				return r
			}
			continue
		}
		if list, elseList, ok := branches(node); ok {
			if r := findToolCallNode(list.Nodes); r != nil {
				return r
			}
			if elseList != nil {
				if r := findToolCallNode(elseList.Nodes); r != nil {
					return r
				}
			}
		}
	}
	return nil
}

func findTextNode(nodes []parse.Node) *parse.TextNode {
	for _, node := range nodes {
		switch n := node.(type) {
		case *parse.TextNode:
			if len(bytes.TrimSpace(n.Text)) == 0 {
				continue
			}
			return n
		case *parse.ListNode:
			if r := findTextNode(n.Nodes); r != nil {
				return r
			}
		case *parse.ActionNode:
			return nil
		default:
			if list, elseList, ok := branches(node); ok {
				if r := findTextNode(list.Nodes); r != nil {
					return r
				}
				if elseList != nil {
					if r := findTextNode(elseList.Nodes); r != nil {
						return r
					}
				}
				return nil
			}
		}
	}
	return nil
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "gotmpl: bad input:", err)
		os.Exit(2)
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		results[i] = render(c)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "gotmpl:", err)
		os.Exit(2)
	}
}
