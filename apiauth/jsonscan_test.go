package apiauth

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestParseObjectStrict(t *testing.T) {
	ok := []string{`{}`, ` {"a":1} `, `{"a":"x\u00e9\n","b":[1,-2.5e3,true,false,null,{"c":{}}]}`, `{"a":"é"}`}
	bad := []string{``, `[]`, `{`, `{"a":1,}`, `{"a":1}x`, `{"a":1}{}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`,
		`{'a':1}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":tru}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}",
		"{\"a\":\"\xff\"}", `{"a":"\u12"}`, `{"a" 1}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{a:1}`,
		`{"a":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}`}
	for _, s := range ok {
		if err := parseObject([]byte(s), nil); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
	for _, s := range bad {
		if err := parseObject([]byte(s), nil); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParseObjectManyMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 3000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":0`)
	}
	ok := b.String() + "}"
	if err := parseObject([]byte(ok), nil); err != nil {
		t.Fatal(err)
	}
	for _, dup := range []string{`"k5":1`, `"k2999":1`, `"\u006b40":1`} {
		if err := parseObject([]byte(b.String()+","+dup+"}"), nil); err == nil {
			t.Fatalf("duplicate %s among 3000 members accepted", dup)
		}
	}
}

func TestIntValue(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1700000000": 1700000000, "-5": -5} {
		if got, ok := intValue([]byte(in), kindNumber); !ok || got != want {
			t.Errorf("%s → %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"1.5", "1e9", "-", "9999999999999999"} {
		if _, ok := intValue([]byte(in), kindNumber); ok {
			t.Errorf("%s accepted", in)
		}
	}
}

// FuzzParseObject: whatever parseObject accepts is valid JSON for
// encoding/json, and decodes to the same member values.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":"c"}]}`, `{"a":"\u0041","b":1e5}`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		members := map[string]string{}
		err := parseObject(b, func(key []byte, esc bool, val []byte, kind byte) error {
			members[unescape(key, esc)] = string(val)
			return nil
		})
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if jerr := json.Unmarshal(b, &m); jerr != nil {
			t.Fatalf("accepted %q that encoding/json refuses: %v", b, jerr)
		}
		if len(m) != len(members) {
			t.Fatalf("%q: %d members, encoding/json %d", b, len(members), len(m))
		}
		for k, v := range m {
			if members[k] != string(v) {
				t.Fatalf("%q: member %q = %q, encoding/json %q", b, k, members[k], v)
			}
		}
	})
}
