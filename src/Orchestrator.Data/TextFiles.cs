using System.Text;
using System.Text.Unicode;

namespace Orchestrator.Data;

/// <summary>
/// Reads dataset files as strict UTF-8. A byte sequence that is not UTF-8 (a Latin-1 é, a UTF-16 file) is
/// refused with the file, the line and column of the first bad byte, never silently replaced.
/// </summary>
public static class TextFiles
{
    /// <summary>The file's text (a UTF-8 byte-order mark is dropped).</summary>
    public static string ReadUtf8(string path) => Encoding.UTF8.GetString(ReadUtf8Bytes(path));

    /// <summary>The file's bytes after checking they are valid UTF-8 (a byte-order mark is dropped).</summary>
    public static byte[] ReadUtf8Bytes(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"{path}: cannot read the file ({ex.Message})", ex);
        }

        if (bytes.Length >= 2 && ((bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF)))
        {
            throw new DatasetException($"{path}:1:1: wrong encoding: the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8");
        }

        var start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        var span = bytes.AsSpan(start);
        if (!Utf8.IsValid(span))
        {
            var offset = FirstInvalidOffset(span);
            var (line, column) = Position(span, offset);
            throw new DatasetException(
                $"{path}:{line}:{column}: wrong encoding: byte 0x{span[offset]:X2} (offset {offset + start}) is not valid UTF-8; the file must be UTF-8");
        }

        return start == 0 ? bytes : span.ToArray();
    }

    /// <summary>1-based line and column (in UTF-8 bytes) of a byte offset.</summary>
    public static (int Line, int Column) Position(ReadOnlySpan<byte> bytes, long offset)
    {
        var line = 1;
        var lineStart = 0L;
        for (var i = 0; i < offset && i < bytes.Length; i++)
        {
            if (bytes[i] == (byte)'\n')
            {
                line++;
                lineStart = i + 1;
            }
        }

        return (line, (int)(offset - lineStart) + 1);
    }

    private static int FirstInvalidOffset(ReadOnlySpan<byte> bytes)
    {
        var i = 0;
        while (i < bytes.Length)
        {
            if (Rune.DecodeFromUtf8(bytes[i..], out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                return i;
            }

            i += consumed;
        }

        return bytes.Length - 1;
    }
}
