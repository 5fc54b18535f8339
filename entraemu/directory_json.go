package entraemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// decodeError explains why data does not decode into a Directory, naming
// where: "line 3:17: ..." for a syntax error, the field path for a schema
// error ("users[0].passwd: unknown field", "users[1].mfaRegistered: want
// boolean, got string"). encoding/json's own messages name the Go struct
// field without its index, or only "unexpected EOF": useless to a person
// editing the file.
func decodeError(data []byte, decErr error) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, se.Offset)
			return fmt.Errorf("directory: line %d:%d: invalid JSON: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
		}
		return fmt.Errorf("directory: invalid JSON: %w", err)
	}
	if msg := checkShape(v, reflect.TypeOf(Directory{}), ""); msg != "" {
		return errors.New("directory: " + msg)
	}
	return fmt.Errorf("directory: %w", decErr)
}

// lineCol turns a byte offset into a 1-based line and column (the offset
// of a SyntaxError is just past the offending byte).
func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off > 0 {
		off-- // point at the offending byte, not past it
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// checkShape walks a generic JSON value against the Go type it must decode
// into and returns the first mismatch as "path: problem" ("" if none).
// Object keys are visited in sorted order so the answer is deterministic.
func checkShape(v any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil { // null is accepted for every Go type
		return ""
	}
	at := func(msg string) string {
		if path == "" {
			return msg
		}
		return path + ": " + msg
	}
	want := func(name string) string { return at("want " + name + ", got " + jsonKind(v)) }
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return want("object")
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			f, ok := jsonField(t, k)
			if !ok {
				return p + ": unknown field"
			}
			if msg := checkShape(m[k], f.Type, p); msg != "" {
				return msg
			}
		}
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			return want("array")
		}
		for i, e := range a {
			if msg := checkShape(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); msg != "" {
				return msg
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return want("string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return want("boolean")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(float64)
		if !ok {
			return want("integer")
		}
		if n != math.Trunc(n) || n < math.MinInt32 || n > math.MaxInt32 {
			return at("want integer, got " + strconv.FormatFloat(n, 'g', -1, 64))
		}
	}
	return ""
}

// jsonField finds the exported field that encoding/json would decode key
// into: exact tag name first, then case-insensitively (as json does).
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	var fold *reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f, true
		}
		if fold == nil && strings.EqualFold(name, key) {
			fold = &f
		}
	}
	if fold != nil {
		return *fold, true
	}
	return reflect.StructField{}, false
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}
