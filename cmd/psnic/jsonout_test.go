package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/container-vnic/container_vnic_exporter/vnicwatch"
)

// sampleRow fills every JSON field of a row (by reflection, so that a field
// added to vnicwatch.Row without a place in rowFields fails the comparison)
// with values derived from s and n.
func sampleRow(s string, n int) row {
	var r row
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			switch f.Kind() {
			case reflect.String:
				f.SetString(s + v.Type().Field(i).Name)
			case reflect.Int:
				f.SetInt(int64(n + i))
			case reflect.Uint64:
				f.SetUint(uint64(n) << 20)
			case reflect.Struct:
				fill(f)
			}
		}
	}
	fill(reflect.ValueOf(&r).Elem())
	return r
}

// psnic's JSON is byte for byte encoding/json's, for the array psnic prints
// and for the lines psnic watch prints, with and without "old".
func TestJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "eth0", `a"b\c`, "<&>", "tab\there\n", "\b\f\x01\x1f\x7f", "é€😀", "\u2028\u2029", "bad\xffutf8"} {
		rows := []row{sampleRow(s, 1), sampleRow(s+"x", 1<<30)}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			t.Fatal(err)
		}
		if got := appendRowsJSON(nil, rows); string(got) != want.String() {
			t.Errorf("rows of %q:\ngot  %s\nwant %s", s, got, want.String())
		}
		old := rows[1]
		for _, c := range []change{
			{Event: string(vnicwatch.Added), Time: s, row: rows[0]},
			{Event: string(vnicwatch.Changed), Time: s, row: rows[0], Old: &old},
		} {
			want, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendObject(nil, changeFields(c), "", ""); string(got) != string(want) {
				t.Errorf("change of %q:\ngot  %s\nwant %s", s, got, want)
			}
		}
	}
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode([]row{}); err != nil {
		t.Fatal(err)
	}
	if got := appendRowsJSON(nil, nil); string(got) != want.String() {
		t.Errorf("no rows: got %q, want %q", got, want.String())
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "veth0", "\x00", "\xff", "<script>", "\u2028", "\\\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonString(s); got != string(want) {
			t.Fatalf("jsonString(%q) = %s, want %s", s, got, want)
		}
	})
}
