package keepalived

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
)

// Dump renders c as indented text, one field per line, leaving out zero
// values; the rendering is stable (it is what the golden tests compare)
// and is meant for humans, like keepalived's -d dump.
func (c *Config) Dump() string {
	var b strings.Builder
	dumpValue(&b, 0, "", reflect.ValueOf(*c))
	return b.String()
}

func dumpValue(b *strings.Builder, depth int, name string, v reflect.Value) {
	ind := strings.Repeat("  ", depth)
	label := ind
	if name != "" {
		label += name + ": "
	}
	if s, ok := v.Interface().(fmt.Stringer); ok && v.Kind() != reflect.Pointer && v.Kind() != reflect.Struct || isStringerStruct(v) {
		fmt.Fprintf(b, "%s%s\n", label, s)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		dumpValue(b, depth, name, v.Elem())
	case reflect.Struct:
		if name != "" {
			fmt.Fprintf(b, "%s%s:\n", ind, name)
			depth++
		}
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !t.Field(i).IsExported() || f.IsZero() {
				continue
			}
			dumpValue(b, depth, t.Field(i).Name, f)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			fmt.Fprintf(b, "%s%s\n", label, hex.EncodeToString(v.Bytes()))
			return
		}
		if k := v.Type().Elem().Kind(); k != reflect.Struct && k != reflect.Pointer && k != reflect.Slice {
			var parts []string
			for i := 0; i < v.Len(); i++ {
				parts = append(parts, fmt.Sprint(v.Index(i).Interface()))
			}
			fmt.Fprintf(b, "%s[%s]\n", label, strings.Join(parts, " "))
			return
		}
		for i := 0; i < v.Len(); i++ {
			dumpValue(b, depth, fmt.Sprintf("%s[%d]", name, i), v.Index(i))
		}
	case reflect.String:
		fmt.Fprintf(b, "%s%q\n", label, v.String())
	default:
		fmt.Fprintf(b, "%s%v\n", label, v.Interface())
	}
}

// isStringerStruct reports whether v is a struct value with a String
// method (netip.Addr, netip.Prefix, service.Key, Pos).
func isStringerStruct(v reflect.Value) bool {
	if v.Kind() != reflect.Struct {
		return false
	}
	_, ok := v.Interface().(fmt.Stringer)
	return ok
}
