/// A valid ISBN, always held as its 13 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isbn(String);

impl Isbn {
    /// Accepts ISBN-10 (last character may be `X`) and ISBN-13 (prefix 978 or 979), with
    /// hyphens or spaces anywhere, and checks the check digit. ISBN-10s become ISBN-13s.
    ///
    /// # Errors
    /// A message for the client.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let compact: String = raw.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
        match compact.len() {
            10 => from_isbn10(&compact),
            13 => from_isbn13(&compact),
            _ => Err("must be an ISBN-10 or ISBN-13".to_owned()),
        }
        .map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn digits(text: &str) -> Option<Vec<u32>> {
    text.chars().map(|c| c.to_digit(10)).collect()
}

fn from_isbn10(isbn: &str) -> Result<String, String> {
    let (body, check) = isbn.split_at(9);
    let body =
        digits(body).ok_or_else(|| "may contain only digits, hyphens and spaces".to_owned())?;
    let check = match check {
        "X" | "x" => 10,
        digit => digit
            .chars()
            .next()
            .and_then(|c| c.to_digit(10))
            .ok_or_else(|| "an ISBN-10 ends with a digit or X".to_owned())?,
    };
    // Weights 10 down to 1; a valid ISBN-10 sums to a multiple of 11.
    let sum: u32 = body
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum::<u32>()
        + check;
    if !sum.is_multiple_of(11) {
        return Err("has a wrong check digit".to_owned());
    }
    let mut isbn13: Vec<u32> = vec![9, 7, 8];
    isbn13.extend(&body);
    isbn13.push(isbn13_check_digit(&isbn13));
    Ok(isbn13.iter().map(u32::to_string).collect())
}

fn from_isbn13(isbn: &str) -> Result<String, String> {
    let all =
        digits(isbn).ok_or_else(|| "may contain only digits, hyphens and spaces".to_owned())?;
    if !isbn.starts_with("978") && !isbn.starts_with("979") {
        return Err("an ISBN-13 starts with 978 or 979".to_owned());
    }
    if isbn13_check_digit(&all[..12]) != all[12] {
        return Err("has a wrong check digit".to_owned());
    }
    Ok(isbn.to_owned())
}

/// Weights alternate 1 and 3; the check digit brings the sum to a multiple of 10.
fn isbn13_check_digit(first_twelve: &[u32]) -> u32 {
    let sum: u32 = first_twelve
        .iter()
        .zip([1, 3].into_iter().cycle())
        .map(|(d, w)| d * w)
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use super::Isbn;

    #[test]
    fn isbn_10s_are_normalised_to_isbn_13() {
        assert_eq!(
            Isbn::parse("0-306-40615-2").unwrap().as_str(),
            "9780306406157"
        );
        assert_eq!(
            Isbn::parse("0 8044 2957 X").unwrap().as_str(),
            "9780804429573"
        );
        assert_eq!(Isbn::parse("080442957x").unwrap().as_str(), "9780804429573");
    }

    #[test]
    fn isbn_13s_are_kept_as_their_digits() {
        assert_eq!(
            Isbn::parse("978-0-306-40615-7").unwrap().as_str(),
            "9780306406157"
        );
        assert_eq!(
            Isbn::parse("979-10-90636-07-1").unwrap().as_str(),
            "9791090636071"
        );
    }

    #[test]
    fn wrong_check_digits_lengths_and_characters_are_refused() {
        for bad in [
            "0-306-40615-3",
            "978-0-306-40615-8",
            "977-0-306-40615-7",
            "12345",
            "",
            "03064O6152",
            "X306406152",
            "978030640615X",
        ] {
            assert!(Isbn::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
