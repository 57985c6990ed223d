using System.Text;

namespace Orchestrator.Evaluation;

/// <summary>
/// The tokenisation of the MS-COCO caption evaluation code (pycocoevalcap's <c>PTBTokenizer</c>) that the E2E
/// scripts run before METEOR and CIDEr: Stanford CoreNLP 3.4.1's PTB tokenizer with <c>-preserveLines -lowerCase</c>,
/// then removal of the punctuation tokens <c>'' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ;</c>.
/// CoreNLP (Java) is not available here, so this is an <b>approximation</b> of its rules that matter for table-to-text
/// output: lower-casing; splitting off quotes, brackets, commas, colons, semicolons, ! and ?; a final period unless
/// the word is an abbreviation (<c>u.s.</c>, <c>mr.</c>, <c>st.</c>); currency symbols before numbers; the clitics
/// <c>n't 's 're 've 'll 'd 'm</c> and <c>cannot</c>; hyphenated words, decimals and <c>1,000</c> stay whole. Brackets,
/// curly quotes and free-standing en/em dashes (CoreNLP's <c>--</c>) are dropped as punctuation. Where CoreNLP differs (rare abbreviations, its PTB escapes), scores can differ slightly.
/// </summary>
public static class CocoTokenizer
{
    private static readonly HashSet<string> Punctuation = new(StringComparer.Ordinal)
    {
        "''", "'", "``", "`", "-lrb-", "-rrb-", "-lcb-", "-rcb-", ".", "?", "!", ",", ":", "-", "--", "...", ";",
        "(", ")", "[", "]", "{", "}", "\"", "\u201C", "\u201D", "\u2013", "\u2014",
    };

    private static readonly HashSet<string> Abbreviations = new(StringComparer.Ordinal)
    {
        "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "inc", "ltd", "co", "corp", "vs", "etc", "no", "mt", "ft", "ave",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "gen", "gov", "sen", "rep", "rev",
    };

    private static readonly string[] Clitics = ["n't", "'s", "'re", "'ve", "'ll", "'d", "'m"];

    /// <summary>The tokens of one text, lower-cased, punctuation tokens removed.</summary>
    public static IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<string>();
        foreach (var chunk in PythonText.SplitWhitespace(PythonText.Lower(text.Replace('\n', ' '))))
        {
            SplitChunk(chunk, tokens);
        }

        tokens.RemoveAll(t => Punctuation.Contains(t));
        return tokens;
    }

    private static void SplitChunk(string chunk, List<string> output)
    {
        // Split at characters that are always tokens of their own.
        var pieces = new List<string>();
        var current = new StringBuilder();
        for (var i = 0; i < chunk.Length; i++)
        {
            var c = chunk[i];
            var betweenDigits = i > 0 && i + 1 < chunk.Length && char.IsDigit(chunk[i - 1]) && char.IsDigit(chunk[i + 1]);
            var separate = c switch
            {
                '"' or '(' or ')' or '[' or ']' or '{' or '}' or ';' or '!' or '?' or '\u201C' or '\u201D' => true,
                ',' or ':' => !betweenDigits,
                '$' or '£' or '€' or '¥' or '#' => true,
                _ => false,
            };
            if (separate)
            {
                Flush(current, pieces);
                pieces.Add(c.ToString());
            }
            else
            {
                current.Append(c == '\u2019' || c == '\u2018' ? '\'' : c);
            }
        }

        Flush(current, pieces);
        foreach (var piece in pieces)
        {
            SplitWord(piece, output);
        }
    }

    private static void SplitWord(string word, List<string> output)
    {
        var trailing = new List<string>();

        // Leading quotes and dashes.
        while (word.Length > 1 && (word[0] == '\'' || word[0] == '`') && !IsClitic(word))
        {
            output.Add(word[0].ToString());
            word = word[1..];
        }

        // Trailing ellipsis, periods and quotes.
        while (word.Length > 0)
        {
            if (word.EndsWith("...", StringComparison.Ordinal) && word.Length > 3)
            {
                trailing.Insert(0, "...");
                word = word[..^3];
            }
            else if (word.EndsWith('.') && word.Length > 1 && !IsAbbreviation(word))
            {
                trailing.Insert(0, ".");
                word = word[..^1];
            }
            else if (word.EndsWith('\'') && word.Length > 1 && !word.EndsWith("n'", StringComparison.Ordinal))
            {
                trailing.Insert(0, "'");
                word = word[..^1];
            }
            else
            {
                break;
            }
        }

        if (word == "cannot")
        {
            output.Add("can");
            output.Add("not");
        }
        else if (word.Length > 0)
        {
            var clitic = Clitics.FirstOrDefault(c => word.Length > c.Length && word.EndsWith(c, StringComparison.Ordinal));
            if (clitic is not null)
            {
                output.Add(word[..^clitic.Length]);
                output.Add(clitic);
            }
            else
            {
                output.Add(word);
            }
        }

        output.AddRange(trailing);
    }

    private static bool IsClitic(string word) => Clitics.Contains(word);

    private static bool IsAbbreviation(string word)
    {
        var stem = word[..^1];
        if (stem.Length == 0)
        {
            return false;
        }

        // u.s. / e.g. / a.m.: letters separated by periods; single letters (initials) too.
        if (stem.Length == 1 && char.IsLetter(stem[0]))
        {
            return true;
        }

        if (stem.Contains('.') && stem.Split('.').All(p => p.Length == 1 && char.IsLetter(p[0])))
        {
            return true;
        }

        return Abbreviations.Contains(stem);
    }

    private static void Flush(StringBuilder current, List<string> pieces)
    {
        if (current.Length > 0)
        {
            pieces.Add(current.ToString());
            current.Clear();
        }
    }
}
