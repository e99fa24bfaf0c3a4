//! Number formatting shared by what Sluice shows people (e-mails, chart labels).

/// `-1234567.5` -> `-1,234,567.5`.
pub fn group_thousands(number: &str) -> String {
    let (sign, rest) = match number.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", number),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(number.len() + int.len() / 3);
    out.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_the_integer_part_only() {
        assert_eq!(super::group_thousands("-1234567.5"), "-1,234,567.5");
        assert_eq!(super::group_thousands("123"), "123");
        assert_eq!(super::group_thousands("1000.00001"), "1,000.00001");
    }
}
