using System.Security.Cryptography;
using System.Text;

namespace Orchestrator.Core.Hashing;

/// <summary>SHA-256 content hashes as lower-case hex, the identity used for cells, manifests and files.</summary>
public static class ContentHash
{
    public static string Of(string text) => Of(Encoding.UTF8.GetBytes(text));

    public static string Of(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static string OfFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Hash of a folder's files (relative path + content), in ordinal path order.</summary>
    public static string OfDirectory(string path)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var rel = Path.GetRelativePath(path, file).Replace('\\', '/');
            sha.AppendData(Encoding.UTF8.GetBytes(rel + "\n"));
            sha.AppendData(Encoding.UTF8.GetBytes(OfFile(file) + "\n"));
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
