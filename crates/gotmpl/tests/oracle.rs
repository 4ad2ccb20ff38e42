//! Differential tests against Go itself: templates beyond the corpus (every function we offer,
//! Go's formatting corners, and the errors) rendered by the KUDO oracle (Go's `text/template` +
//! sprig, configured as KUDO's renderer; `scripts/kudo-oracle` builds it) and by us, compared
//! byte for byte, errors included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use maestro_gotmpl::{Value, kudo};
use serde_json::{Value as Json, json};

const CASES: &[(&str, &str)] = &[
    (
        "numbers",
        "{{ 1e6 }} {{ 1.5 }} {{ 3 }} {{ 0x10 }} {{ .Params.NUMS }} {{ index .Params.NUMS 1 }} {{ 1234567.0 }} {{ 0.00001 }}",
    ),
    ("printf", r#"{{ printf "%s-%d-%v-%q-%05.2f|%5s|%-4d|" "a" 3 .Params.NUMS "x\ny" 3.14159 "ab" 7 }}"#),
    ("printf-wrong", r#"{{ printf "%d %s" "x" }} {{ printf "%v" 1 2 }}"#),
    (
        "quote",
        r#"{{ quote .Params.NAME 3 }} {{ squote "a" }} {{ default "d" .Params.EMPTY }} {{ default "d" "x" }} {{ empty "" }} {{ empty 0 }} {{ coalesce "" "y" }} {{ ternary "a" "b" true }}"#,
    ),
    ("json", "{{ toJson .Params.OBJ }} {{ toJson .Params.NUMS }} {{ toJson \"<&>\" }}"),
    ("yaml", "{{ toYaml .Params.OBJ }}{{ toYaml .Params.NUMS }}{{ toYaml .Params.NAME }}"),
    (
        "arithmetic",
        r#"{{ add 1 "2" 3.7 }} {{ sub 10 3 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ mod 7 3 }} {{ min 3 1 2 }} {{ max 3 1 2 }} {{ int "0x10" }} {{ int "08" }} {{ int "3.0" }} {{ add1 4 }} {{ int64 "5" }} {{ float64 "2.5" }}"#,
    ),
    (
        "range",
        "{{ range $i, $v := until 3 }}{{$i}}={{$v}},{{ end }}{{ range $k, $v := .Params.OBJ }}{{$k}}:{{$v}};{{ end }}{{ range .Params.EMPTY_LIST }}x{{ else }}empty{{ end }}{{ range untilStep 10 0 -3 }}{{.}} {{ end }}",
    ),
    (
        "range-break",
        "{{ range $i := until 10 }}{{ if eq $i 2 }}{{ continue }}{{ end }}{{ if gt $i 4 }}{{ break }}{{ end }}{{ $i }}{{ end }}",
    ),
    (
        "strings",
        r#"{{ upper "abc" }} {{ lower "ABC" }} {{ replace "a" "o" "banana" }} [{{ trim "  x  " }}] {{ indent 2 "a\nb" }}{{ nindent 4 "c" }} {{ b64enc "hello" }} {{ b64dec "aGVsbG8=" }} {{ b64dec "!!" }} {{ trimSuffix "-x" "a-x" }} {{ trimPrefix "a" "ab" }} {{ contains "b" "abc" }} {{ hasPrefix "a" "abc" }} {{ hasSuffix "c" "abc" }} {{ repeat 3 "ab" }} {{ join "," .Params.NUMS }} {{ splitList "," "a,b" }} {{ trimAll "x" "xxaxx" }}"#,
    ),
    (
        "compare",
        r#"{{ eq 1 1 }} {{ ne "a" "b" }} {{ lt 1 2 }} {{ gt 2.5 1.5 }} {{ le 2 2 }} {{ ge "b" "a" }} {{ and 1 0 }} {{ or 0 "" "x" }} {{ not 0 }} {{ len "abc" }} {{ len .Params.NUMS }} {{ eq "a" "b" "a" }} {{ eq .Params.NAME "kudo" }}"#,
    ),
    (
        "scopes",
        "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ $y }}{{ end }}{{ $x }}{{ range .Params.NUMS }}{{ $.Name }}{{ . }}{{ end }}{{ with .Params.OBJ }}{{ .a }}{{ end }}{{ with .Params.EMPTY }}no{{ else }}else{{ end }}",
    ),
    ("trim", "a  {{- /* c */ -}}  b {{- 1 }} {{ 2 -}}   c\n  {{- if true }}\n  yes\n  {{- end }}\n"),
    (
        "print",
        r#"{{ print 1 2 "a" 3 }} {{ println "x" 1 }}{{ print nil }} {{ .Params.NIL }} {{ list 1 "a" 2.5 }} {{ dict "a" 1 "b" }} {{ print .Params.OBJ }}"#,
    ),
    (
        "pipes",
        r#"{{ .Params.N | int | add 1 }} {{ "x" | upper | printf "%s!" }} {{ (index .Params.LIST 0).name }} {{ first .Params.NUMS }} {{ last .Params.NUMS }} {{ hasKey .Params.OBJ "a" }}"#,
    ),
    ("else-if", "{{ if eq .Params.N \"1\" }}one{{ else if eq .Params.N \"2\" }}two{{ else }}many{{ end }}"),
    ("err-compare", r#"{{ eq "1" 1 }}"#),
    ("err-missing", "line one\n  {{ .Params.MISSING }}"),
    ("err-missing-deep", "{{ (index .Params.LIST 0).nope }}"),
    ("err-type", "{{ until .Params.N }}"),
    ("err-type-int64", "{{ until (add 1 2) }}"),
    ("err-function", "{{ nosuch 1 }}"),
    ("err-div", "{{ div 1 0 }}"),
    ("err-index", "{{ index .Params.NUMS 9 }}"),
    ("err-nil-field", "{{ .Params.NIL.x }}"),
    ("err-if", "{{ if }}x{{ end }}"),
    ("err-end", "a\n{{ end }}"),
    ("err-var", "{{ $x }}"),
    ("err-range", "{{ range 5 }}{{ end }}"),
    ("err-args", "{{ trim }}"),
    ("err-eof", "{{ if true }}x"),
    ("err-string-arg", "{{ upper 3 }}"),
    ("err-nonfunc", "{{ .Params.N 1 }}"),
];

const PARAMS: &str = r#"apiVersion: kudo.dev/v1beta1
parameters:
  - name: NAME
    default: kudo
  - name: N
    default: 2
  - name: EMPTY
    default: ""
  - name: NIL
  - name: NUMS
    type: array
    default: [1, 2.5, 1000000]
  - name: EMPTY_LIST
    type: array
    default: []
  - name: LIST
    type: array
    default:
      - name: first
        size: 3
  - name: OBJ
    type: map
    default:
      a: "1"
      b: [x, "true", 3]
      c: {d: null, e: "two words", f: "- dash"}
"#;

fn oracle() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/kudo-oracle");
    assert!(path.exists(), "{} is missing: run scripts/kudo-oracle (scripts/test does)", path.display());
    path
}

fn package() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("templates")).expect("templates/");
    std::fs::write(dir.path().join("params.yaml"), PARAMS).expect("params.yaml");
    for (name, source) in CASES {
        std::fs::write(dir.path().join("templates").join(format!("{name}.yaml")), source).expect("template");
    }
    dir
}

fn data() -> Value {
    let file: serde_yaml::Value = serde_yaml::from_str(PARAMS).expect("params");
    let params = kudo::params(&file, &BTreeMap::new()).expect("parameters");
    let meta = BTreeMap::from([("Name".to_string(), "inst".to_string()), ("Namespace".to_string(), "ns".to_string())]);
    kudo::data(&meta, params, BTreeMap::new())
}

#[test]
fn templates_render_and_fail_exactly_as_go_does() {
    let package = package();
    let meta = package.path().join("meta.json");
    std::fs::write(&meta, json!({"Name": "inst", "Namespace": "ns"}).to_string()).expect("meta");
    let none = package.path().join("none.json");
    std::fs::write(&none, "{}").expect("params");
    let output = Command::new(oracle()).arg(package.path()).arg(&none).arg(&meta).output().expect("oracle runs");
    assert!(output.status.success(), "oracle: {}", String::from_utf8_lossy(&output.stderr));
    let go: BTreeMap<String, Json> = serde_json::from_slice(&output.stdout).expect("oracle JSON");

    let data = data();
    let mut failures = Vec::new();
    for (name, source) in CASES {
        let file = format!("{name}.yaml");
        let ours = match maestro_gotmpl::render(&file, source, &data) {
            Ok(text) => json!({"rendered": text}),
            Err(e) => json!({"error": e.kudo_text()}),
        };
        if go.get(&file) != Some(&ours) {
            failures.push(format!("{file}\n  go   {}\n  ours {ours}", go.get(&file).unwrap_or(&Json::Null)));
        }
    }
    assert!(failures.is_empty(), "{} of {} differ from Go:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}
