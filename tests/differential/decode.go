// Reads JSON-RPC bodies the way a Go MCP server does, to compare with
// mcp-authz: encoding/json into tagged structs (keys matched
// case-insensitively with Unicode simple folding, later duplicates winning),
// params as json.RawMessage, then tools/call params into {name, arguments}.
//
// Input: one base64-encoded body per line on stdin. Output: one JSON line per
// body, {"ok":true,"batch":b,"messages":[{"jsonrpc","method","name","uri","arguments","typed"}]}
// or {"ok":false,"error":"..."}. Standard library only.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
)

// The envelope of the Go MCP SDK's jsonrpc2 wire message.
type wire struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      any             `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// The params fields mcp-authz reads, as the Go MCP SDK declares them in
// CallToolParams, GetPromptParams and ReadResourceParams (minus _meta).
type callToolParams struct {
	Name      string          `json:"name"`
	URI       string          `json:"uri"`
	Arguments json.RawMessage `json:"arguments"`
}

// A tool's typed input, as a Go tool handler declares it: the SDK decodes the
// arguments into such a struct, so its keys fold too. These are the argument
// names the differential corpus uses.
type toolInput struct {
	SQL     any `json:"sql"`
	Limit   any `json:"limit"`
	Kind    any `json:"kind"`
	Desk    any `json:"desk"`
	Options any `json:"options"`
}

type reading struct {
	JSONRPC   string         `json:"jsonrpc"`
	Method    string         `json:"method"`
	Name      *string        `json:"name"`
	URI       *string        `json:"uri"`
	Arguments map[string]any `json:"arguments"`
	Typed     *toolInput     `json:"typed"`
}

type result struct {
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	Batch    bool      `json:"batch"`
	Messages []reading `json:"messages,omitempty"`
}

func message(raw []byte) (reading, error) {
	var w wire
	if err := json.Unmarshal(raw, &w); err != nil {
		return reading{}, err
	}
	r := reading{JSONRPC: w.JSONRPC, Method: w.Method}
	if len(w.Params) > 0 {
		var p callToolParams
		var args map[string]any
		var typed toolInput
		err := json.Unmarshal(w.Params, &p)
		if err == nil && len(p.Arguments) > 0 {
			err = json.Unmarshal(p.Arguments, &args)
			if err == nil {
				err = json.Unmarshal(p.Arguments, &typed)
			}
		}
		if err != nil && w.Method == "tools/call" {
			return reading{}, fmt.Errorf("params: %w", err)
		}
		if err == nil {
			r.Name = &p.Name
			r.URI = &p.URI
			r.Arguments = args
			r.Typed = &typed
		}
	}
	return r, nil
}

func decode(body []byte) result {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return result{Error: err.Error()}
		}
		out := result{OK: true, Batch: true}
		for i, item := range items {
			r, err := message(item)
			if err != nil {
				return result{Error: fmt.Sprintf("batch element %d: %v", i, err)}
			}
			out.Messages = append(out.Messages, r)
		}
		return out
	}
	r, err := message(body)
	if err != nil {
		return result{Error: err.Error()}
	}
	return result{OK: true, Messages: []reading{r}}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		var res result
		body, err := base64.StdEncoding.DecodeString(in.Text())
		if err != nil {
			res = result{Error: "bad base64 input: " + err.Error()}
		} else {
			res = decode(body)
		}
		line, err := json.Marshal(res)
		if err != nil {
			line, _ = json.Marshal(result{Error: "cannot encode reading: " + err.Error()})
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "decode.go:", err)
		os.Exit(1)
	}
}
