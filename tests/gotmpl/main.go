// gotmpl renders Ollama TEMPLATEs with Go's own text/template, fed the way Ollama feeds them.
//
// fwyy's tests use it to prove that each chat family's Ollama TEMPLATE gives the same prompt
// text as the family's Jinja chat template. It reads a JSON array of cases on stdin
// ({"template": "...", "messages": [{"role": ..., "content": ...}], "tools": [...]}) and writes a
// JSON array of results ({"output": "..."} or {"error": "..."}) on stdout.
//
// What it copies from Ollama (template/template.go, facts only): the template is parsed with
// missingkey=zero and the json/currentDate/yesterdayDate/toTypeScriptType functions; messages
// are collated (consecutive messages of one role merged with a blank line, tool messages kept
// apart); .System is every system message joined with a blank line while .Messages still holds
// them; a template that names .Messages gets System, Messages, Tools, Response "" and the Think
// fields.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

type toolCallFunction struct {
	Index     int
	Name      string
	Arguments map[string]any
}

type toolCall struct {
	ID       string
	Function toolCallFunction
}

// message has the fields of Ollama's templateMessage.
type message struct {
	Role       string
	Content    string
	Thinking   string
	Images     []string
	ToolCalls  []toolCall
	ToolName   string
	ToolCallID string
}

type inMessage struct {
	Role     string `json:"role"`
	Content  string `json:"content"`
	Thinking string `json:"thinking"`
}

type testCase struct {
	Template string           `json:"template"`
	Messages []inMessage      `json:"messages"`
	Tools    []map[string]any `json:"tools"`
	Think    bool             `json:"think"`
}

type result struct {
	Output string `json:"output"`
	Error  string `json:"error,omitempty"`
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
		} else {
			collated = append(collated, &message{Role: m.Role, Content: m.Content, Thinking: m.Thinking})
		}
	}
	return strings.Join(system, "\n\n"), collated
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
			return nil
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
	system, msgs := collate(c.Messages)
	var tools any
	if c.Tools != nil {
		tools = c.Tools
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
	return result{Output: b.String()}
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
