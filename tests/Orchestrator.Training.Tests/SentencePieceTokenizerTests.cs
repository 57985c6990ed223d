using System.Text;
using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training.Tests;

/// <summary>
/// A SentencePiece BPE <c>tokenizer.model</c> written by the test as raw protobuf (ModelProto: pieces = 1, trainer_spec = 2,
/// normalizer_spec = 3), with merge scores chosen so that the ids can be worked out by hand.
/// </summary>
public sealed class SentencePieceTokenizerTests : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("orch-spm-");

    public void Dispose() => _root.Delete(recursive: true);

    // Ids: 0 <unk>, 1 <s>, 2 </s>, 3–10 the characters ▁ h e l o w r d, then merged pieces by descending score:
    // ▁h 11 (−1), ll 12 (−2), ▁he 13 (−3), llo 14 (−4), ▁w 15 (−5), or 16 (−6), ▁wor 17 (−7).
    private static readonly (string Piece, float Score, int Type)[] Pieces =
    [
        ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3),
        ("▁", -10, 1), ("h", -11, 1), ("e", -12, 1), ("l", -13, 1), ("o", -14, 1), ("w", -15, 1), ("r", -16, 1), ("d", -17, 1),
        ("▁h", -1, 1), ("ll", -2, 1), ("▁he", -3, 1), ("llo", -4, 1), ("▁w", -5, 1), ("or", -6, 1), ("▁wor", -7, 1),
    ];

    private string WriteModel(string directory)
    {
        var model = new MemoryStream();
        foreach (var (piece, score, type) in Pieces)
        {
            var p = new MemoryStream();
            Bytes(p, 1, Encoding.UTF8.GetBytes(piece));
            Fixed32(p, 2, score);
            Varint(p, 3, (ulong)type);
            Bytes(model, 1, p.ToArray());
        }

        var trainer = new MemoryStream();
        Varint(trainer, 3, 2);  // model_type BPE
        Varint(trainer, 4, (ulong)Pieces.Length);
        Varint(trainer, 35, 0); // byte_fallback false
        Varint(trainer, 40, 0); // unk_id
        Varint(trainer, 41, 1); // bos_id
        Varint(trainer, 42, 2); // eos_id
        Bytes(model, 2, trainer.ToArray());

        var normalizer = new MemoryStream();
        Bytes(normalizer, 1, Encoding.UTF8.GetBytes("identity"));
        Varint(normalizer, 3, 1); // add_dummy_prefix
        Varint(normalizer, 4, 0); // remove_extra_whitespaces
        Varint(normalizer, 5, 1); // escape_whitespaces
        Bytes(model, 3, normalizer.ToArray());

        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, "tokenizer.model");
        File.WriteAllBytes(path, model.ToArray());
        return path;
    }

    private static void Tag(Stream s, int field, int wire) => RawVarint(s, (ulong)((field << 3) | wire));

    private static void Varint(Stream s, int field, ulong value)
    {
        Tag(s, field, 0);
        RawVarint(s, value);
    }

    private static void Fixed32(Stream s, int field, float value)
    {
        Tag(s, field, 5);
        s.Write(BitConverter.GetBytes(value));
    }

    private static void Bytes(Stream s, int field, byte[] value)
    {
        Tag(s, field, 2);
        RawVarint(s, (ulong)value.Length);
        s.Write(value);
    }

    private static void RawVarint(Stream s, ulong v)
    {
        while (v >= 0x80)
        {
            s.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }

        s.WriteByte((byte)v);
    }

    [Fact]
    public void Merges_by_score_give_the_hand_worked_ids_with_the_dummy_prefix_and_begin_token()
    {
        var tokenizer = SentencePieceFileTokenizer.Load(WriteModel(_root.FullName));
        // ▁hello: ▁h, ll, ▁he, llo → [13, 14]; ▁world: ▁w, or, ▁wor, then l d → [17, 6, 10].
        Assert.Equal([13, 14, 17, 6, 10], tokenizer.Encode("hello world"));
        Assert.Equal([13, 14, 17, 6, 10], tokenizer.EncodeWithBegin("hello world")); // loaded alone: no begin token
        Assert.Equal("hello world", tokenizer.Decode([13, 14, 17, 6, 10]));
        Assert.Equal(2, tokenizer.EndOfText);
        Assert.Equal(1, tokenizer.BeginOfSentence);
        Assert.Equal([1, 13, 14], SentencePieceFileTokenizer.Load(WriteModel(Path.Combine(_root.FullName, "with-begin")), beginToken: 1).EncodeWithBegin("hello"));
        Assert.Equal(Pieces.Length, tokenizer.VocabSize);
    }

    [Fact]
    public void A_llama2_folder_reads_tokenizer_model_when_its_tokenizer_json_is_not_byte_level()
    {
        string dir = Path.Combine(_root.FullName, "llama2");
        WriteModel(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), """
            {"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
             "pre_tokenizer": null, "added_tokens": [], "model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}}
            """);
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type": "llama", "bos_token_id": 1, "eos_token_id": 2}""");
        var config = new LlamaConfig(1, 2, 1, 32, 64, Pieces.Length, 64, EosTokenIds: [2]);
        var tokenizer = LlamaCheckpoint.LoadTokenizer(dir, config);
        Assert.IsType<SentencePieceFileTokenizer>(tokenizer);
        // A SentencePiece tokenizer adds <s> by default (LlamaTokenizer's add_bos_token); config.json names its id.
        Assert.Equal([1, 13, 14], tokenizer.EncodeWithBegin("hello"));
    }
}
