//! cjson tests: scripting.tcl's JSON tests, CJSON's own behaviours, and
//! the number routines checked against the C library they replace.

use mlua::Lua;

use super::super::support::testing::{error_of, eval, lua_with};

use super::number::{format_g, strtod};

fn lua() -> Lua {
    lua_with(super::open)
}

fn c_format_g(x: f64, precision: usize) -> String {
    let mut buf = [0u8; 64];
    let format = std::ffi::CString::new(format!("%.{precision}g")).unwrap();
    // SAFETY: the buffer is large enough for any %g output and snprintf
    // writes at most its length.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), format.as_ptr(), x) };
    String::from_utf8_lossy(&buf[..n as usize]).into_owned()
}

fn c_strtod(text: &str) -> (f64, usize) {
    let c = std::ffi::CString::new(text).unwrap();
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `c` is NUL-terminated and outlives the call.
    let value = unsafe { libc::strtod(c.as_ptr(), &mut end) };
    (value, end as usize - c.as_ptr() as usize)
}

#[test]
fn format_g_matches_c_printf() {
    let mut values = vec![
        0.1,
        0.3,
        1.0 / 3.0,
        2.0 / 3.0,
        100.0,
        1e14,
        1e15,
        1e16,
        123456789012345.0,
        1e-4,
        1e-5,
        0.0001234,
        1.5e300,
        5e-324,
        1023.2,
        -5e3,
        0.5,
        0.125,
        2.5,
        1e21,
        12345.678,
        99999999999999.5,
        0.00001,
        1.7976931348623157e308,
        2f64.powi(63),
        2f64.powi(53) + 1.0,
        -0.0003,
        9.999999999999995,
        0.95,
        0.05,
        1.25,
        1.35,
    ];
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let x = f64::from_bits(seed);
        if x.is_finite() {
            values.push(x);
        }
        values.push((seed % 1_000_000) as f64 / 1000.0);
    }
    for x in values {
        for precision in [1, 2, 5, 14] {
            assert_eq!(
                format_g(x, precision),
                c_format_g(x, precision),
                "{x:e} at {precision}"
            );
        }
    }
}

#[test]
fn strtod_matches_c() {
    let cases = [
        "0", "-0", "1", "01", "1.5", "-5e3", "0.3e-3", "1e400", "1e-400", "1.", ".5", "-.5",
        "1e", "1e+", "1.5e+3x", "0x10", "0X1f", "0x", "0x.8", "0x1p4", "0x1.8p-1", "inf",
        "-Infinity", "infinit", "nan", "NaN(123)", "nan(", "+7", "-", "+", "abc", "123abc",
        "4.9406564584124654e-324", "2.2250738585072014e-308", "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791",
    ];
    for text in cases {
        let expected = c_strtod(text);
        match strtod(text.as_bytes()) {
            Some((value, used)) => {
                assert_eq!(used, expected.1, "{text}");
                assert!(
                    value.to_bits() == expected.0.to_bits()
                        || (value.is_nan() && expected.0.is_nan()),
                    "{text}: {value} vs {}",
                    expected.0
                );
            }
            None => assert_eq!(expected.1, 0, "{text}"),
        }
    }
}

#[test]
fn scripting_tcl_json_numeric_and_string_decoding() {
    let lua = lua();
    let text: String = eval(
        &lua,
        r#"return table.concat(cjson.decode("[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]"), " ")"#,
    );
    assert_eq!(text, "0 -5000 -1 0.0003 1023.2 0");
    let (a, b): (String, String) = eval(
        &lua,
        r#"local d = cjson.decode('{"keya": "a", "keyb": "b"}') return d.keya, d.keyb"#,
    );
    assert_eq!((a.as_str(), b.as_str()), ("a", "b"));
}

#[test]
fn scripting_tcl_json_smoke_test() {
    let lua = lua();
    lua.load(
        r#"
        local some_map = {s1="Some string", n1=100, a1={"Some","String","Array"},
            nil1=nil, b1=true, b2=false}
        local encoded = cjson.encode(some_map)
        local decoded = cjson.decode(encoded)
        assert(table.concat(some_map) == table.concat(decoded))
        cjson.encode_keep_buffer(false)
        encoded = cjson.encode(some_map)
        decoded = cjson.decode(encoded)
        assert(table.concat(some_map) == table.concat(decoded))
        local table1 = {one="one", [1]="one"}
        encoded = cjson.encode(table1)
        decoded = cjson.decode(encoded)
        assert(decoded["one"] == table1["one"])
        assert(decoded["1"] == table1[1])
        local array1 = {[1]="one", [2]="two"}
        encoded = cjson.encode(array1)
        decoded = cjson.decode(encoded)
        assert(table.concat(array1) == table.concat(decoded))
        local invalid_map = {}
        invalid_map[false] = "false"
        local ok, encoded = pcall(cjson.encode, invalid_map)
        assert(ok == false)
        cjson.encode_max_depth(1)
        ok, encoded = pcall(cjson.encode, some_map)
        assert(ok == false)
        cjson.decode_max_depth(1)
        ok, decoded = pcall(cjson.decode, '{"obj": {"array": [1,2,3,4]}}')
        assert(ok == false)
        ok, encoded = pcall(cjson.encode, {num1=0/0})
        assert(ok == false)
        cjson.encode_invalid_numbers(true)
        ok, encoded = pcall(cjson.encode, {num1=0/0})
        assert(ok == true)
        cjson.decode_max_depth(1000)
        cjson.encode_max_depth(1000)
        cjson.encode_invalid_numbers(false)
        "#,
    )
    .exec()
    .unwrap();
}

#[test]
fn encodes_like_cjson() {
    let lua = lua();
    let cases = [
        (r#"{1,2,3,"a"}"#, r#"[1,2,3,"a"]"#),
        ("{}", "{}"),
        ("{a=1}", r#"{"a":1}"#),
        ("{[1]=1, [2]=2, [4]=4}", "[1,2,null,4]"),
        ("0.1", "0.1"),
        ("1/3", "0.33333333333333"),
        ("1e15", "1e+15"),
        ("123456789012345", "1.2345678901234e+14"),
        ("-0.0", "-0"),
        ("2^53", "9.007199254741e+15"),
        (
            "'a/b\"c\\\\d\\n\\1\\127é'",
            r#""a\/b\"c\\d\n\u0001\u007fé""#,
        ),
        ("cjson.null", "null"),
        ("nil", "null"),
        ("true", "true"),
        ("{[1.5]=1}", r#"{"1.5":1}"#),
        ("{[0]=1}", r#"{"0":1}"#),
        ("{[-1]=1}", r#"{"-1":1}"#),
        ("{{}}", "[{}]"),
    ];
    for (expr, expected) in cases {
        let got: String = eval(&lua, &format!("return cjson.encode({expr})"));
        assert_eq!(got, expected, "{expr}");
    }
}

#[test]
fn sparse_arrays_follow_ratio_safe_and_convert() {
    let lua = lua();
    assert_eq!(
        error_of(&lua, "cjson.encode({[11]=1})"),
        "Cannot serialise table: excessively sparse array"
    );
    let s: String = eval(&lua, "return cjson.encode({[10]=1})");
    assert_eq!(s, "[null,null,null,null,null,null,null,null,null,1]");
    let (convert, ratio, safe): (bool, f64, f64) =
        eval(&lua, "return cjson.encode_sparse_array(true)");
    assert_eq!((convert, ratio, safe), (true, 2.0, 10.0));
    let s: String = eval(&lua, "return cjson.encode({[11]=1})");
    assert_eq!(s, r#"{"11":1}"#);
    let s: String = eval(
        &lua,
        "cjson.encode_sparse_array(false, 0) return cjson.encode({[20]=1}):sub(1, 6)",
    );
    assert_eq!(s, "[null,");
}

#[test]
fn encode_errors() {
    let lua = lua();
    assert_eq!(
        error_of(&lua, "cjson.encode(print)"),
        "Cannot serialise function: type not supported"
    );
    assert_eq!(
        error_of(&lua, "cjson.encode({[true]=1})"),
        "Cannot serialise boolean: table key must be a number or string"
    );
    assert_eq!(
        error_of(&lua, "cjson.encode({1/0})"),
        "Cannot serialise number: must not be NaN or Inf"
    );
    assert_eq!(
        error_of(&lua, "cjson.encode()"),
        "bad argument #1 to 'encode' (expected 1 argument)"
    );
    assert_eq!(
        error_of(&lua, "local t = {} t[1] = t cjson.encode(t)"),
        "Cannot serialise, excessive nesting (1001)"
    );
    assert_eq!(
        error_of(&lua, "cjson.encode_max_depth(2) cjson.encode({{{}}})"),
        "Cannot serialise, excessive nesting (3)"
    );
}

#[test]
fn invalid_numbers_modes() {
    let lua = lua();
    let v: Vec<String> = eval(
        &lua,
        "local r = {} cjson.encode_invalid_numbers(true) \
         r[1] = cjson.encode({1/0, -1/0, 0/0}) \
         r[2] = tostring(cjson.encode_invalid_numbers('null')) \
         r[3] = cjson.encode({1/0, 0/0}) \
         r[4] = tostring(cjson.encode_invalid_numbers('off')) return r",
    );
    assert_eq!(v, vec!["[inf,-inf,nan]", "null", "[null,null]", "false"]);
    assert_eq!(
        error_of(&lua, "cjson.encode_invalid_numbers('maybe')"),
        "bad argument #1 to 'encode_invalid_numbers' (invalid option 'maybe')"
    );
    assert_eq!(
        error_of(&lua, "cjson.encode_max_depth(0)"),
        "bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"
    );
    assert_eq!(
        error_of(&lua, "cjson.encode_max_depth(1, 2)"),
        "bad argument #2 to 'encode_max_depth' (found too many arguments)"
    );
    let p: String = eval(
        &lua,
        "cjson.encode_number_precision(3) return cjson.encode(1/3)",
    );
    assert_eq!(p, "0.333");
}

#[test]
fn decodes_values_and_null() {
    let lua = lua();
    let ok: bool = eval(
        &lua,
        r#"local t = cjson.decode([[{"a":null,"b":[true,false,null],"c":"\u00e9\ud83d\ude00\/\t"}]])
           return t.a == cjson.null and t.b[1] == true and t.b[2] == false
              and t.b[3] == cjson.null and t.c == "\195\169\240\159\152\128/\t"
              and type(cjson.null) == 'userdata'"#,
    );
    assert!(ok);
    let v: Vec<f64> = eval(
        &lua,
        "return {cjson.decode('0x10'), cjson.decode('+5'), cjson.decode(' 7 '), cjson.decode(12)}",
    );
    assert_eq!(v, vec![16.0, 5.0, 7.0, 12.0]);
    let inf: f64 = eval(&lua, "return cjson.decode('-Infinity')");
    assert_eq!(inf, f64::NEG_INFINITY);
    let s: String = eval(&lua, "return cjson.decode('\"a\\\\u0000b\"')");
    assert_eq!(s, "a\0b");
    let n: f64 = eval(&lua, "return cjson.decode('[1]\\0garbage')[1]");
    assert_eq!(n, 1.0);
}

#[test]
fn decode_errors() {
    let lua = lua();
    let cases = [
        (
            "[1,2",
            "Expected comma or array end but found T_END at character 5",
        ),
        (
            "[1 2]",
            "Expected comma or array end but found T_NUMBER at character 4",
        ),
        (
            "{1:2}",
            "Expected object key string but found T_NUMBER at character 2",
        ),
        (
            r#"{"a" 1}"#,
            "Expected colon but found T_NUMBER at character 6",
        ),
        (
            r#"{"a":1 "b"}"#,
            "Expected comma or object end but found T_STRING at character 8",
        ),
        ("", "Expected value but found T_END at character 1"),
        ("]", "Expected value but found T_ARR_END at character 1"),
        (
            "[1] x",
            "Expected the end but found invalid token at character 5",
        ),
        (
            "tru",
            "Expected value but found invalid token at character 1",
        ),
        (
            r#""abc"#,
            "Expected value but found unexpected end of string at character 5",
        ),
        (
            r#""\q""#,
            "Expected value but found invalid escape code at character 2",
        ),
        (
            r#""\ud800x""#,
            "Expected value but found invalid unicode escape code at character 2",
        ),
        (
            "-",
            "Expected value but found invalid number at character 1",
        ),
        (
            "1.5e",
            "Expected the end but found invalid token at character 4",
        ),
    ];
    for (json, expected) in cases {
        let got = error_of(&lua, &format!("cjson.decode([==[{json}]==])"));
        assert_eq!(got, expected, "{json}");
    }
    assert_eq!(
        error_of(&lua, "cjson.decode('a\\0')"),
        "JSON parser does not support UTF-16 or UTF-32"
    );
    assert_eq!(
        error_of(&lua, "cjson.decode()"),
        "bad argument #1 to 'decode' (expected 1 argument)"
    );
    assert_eq!(
        error_of(&lua, "cjson.decode({})"),
        "bad argument #1 to 'decode' (string expected, got table)"
    );
    assert_eq!(
        error_of(&lua, "cjson.decode_max_depth(1) cjson.decode('[[1]]')"),
        "Found too many nested data structures (2) at character 2"
    );
    assert_eq!(
        error_of(
            &lua,
            "cjson.decode_invalid_numbers(false) cjson.decode('0x10')"
        ),
        "Expected value but found invalid number at character 1"
    );
}

#[test]
fn deep_nesting_uses_no_rust_recursion_in_decode_and_limits_encode() {
    let lua = lua();
    let depth: usize = eval(
        &lua,
        "cjson.decode_max_depth(100000) \
         local t = cjson.decode(string.rep('[', 5000) .. string.rep(']', 5000)) \
         local d = 0 while type(t) == 'table' do t = t[1] d = d + 1 end return d",
    );
    assert_eq!(depth, 5000);
    let message = error_of(
        &lua,
        "cjson.decode(string.rep('[', 9000) .. string.rep(']', 9000))",
    );
    // Redis stops at 7999; mlua's reference stack runs out a few levels
    // earlier, reported with the same message.
    assert!(
        message.starts_with("Found too many nested data structures (79"),
        "{message}"
    );
    let s: String = eval(
        &lua,
        "local t = {} for i = 1, 999 do t = {t} end return cjson.encode(t):sub(1, 3)",
    );
    assert_eq!(s, "[[[");
}

#[test]
fn new_makes_an_independent_module() {
    let lua = lua();
    let (a, b): (f64, f64) = eval(
        &lua,
        "local c2 = cjson.new() c2.encode_max_depth(5) \
         return cjson.encode_max_depth(), c2.encode_max_depth()",
    );
    assert_eq!((a, b), (1000.0, 5.0));
    let (name, version): (String, String) = eval(&lua, "return cjson._NAME, cjson._VERSION");
    assert_eq!((name.as_str(), version.as_str()), ("cjson", "2.1.0"));
}
