using System.Text;
using System.Text.RegularExpressions;

namespace Orchestrator.Training.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet: every byte maps to one printable character, so that a BPE vocabulary over these
/// characters covers any UTF-8 text. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the other
/// 68 bytes (controls, space, 0x7F–0xA0, 0xAD) map, in byte order, to U+0100, U+0101, … (so space is 'Ġ', '\n' is 'Ċ').
/// </summary>
public static partial class ByteLevel
{
    /// <summary>GPT-2's pre-tokenization pattern (contractions, letter runs, digit runs, other runs, whitespace).</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly char[] ByteToChar = BuildTable();
    private static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    /// <summary>The character that stands for <paramref name="b"/>.</summary>
    public static char Char(byte b) => ByteToChar[b];

    /// <summary>The 256 alphabet characters in byte order.</summary>
    public static IReadOnlyList<char> Alphabet => ByteToChar;

    /// <summary>UTF-8 bytes of <paramref name="text"/> as alphabet characters.</summary>
    public static string Encode(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>The bytes an alphabet string stands for; null if it contains a character outside the alphabet.</summary>
    public static byte[]? Bytes(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out bytes[i])) return null;
        }

        return bytes;
    }

    /// <summary>GPT-2's pre-tokenizer regex (compiled once).</summary>
    public static Regex Gpt2Regex() => Gpt2RegexInstance();

    [GeneratedRegex(Gpt2Pattern)]
    private static partial Regex Gpt2RegexInstance();

    private static char[] BuildTable()
    {
        var table = new char[256];
        var direct = new bool[256];
        for (int b = '!'; b <= '~'; b++) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) direct[b] = true;
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            table[b] = direct[b] ? (char)b : (char)(256 + next++);
        }

        return table;
    }
}
