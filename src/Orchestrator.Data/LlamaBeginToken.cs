using System.Text.Json;
using System.Text.Json.Nodes;

namespace Orchestrator.Data;

/// <summary>
/// The begin-of-sequence id a Llama-family folder's Hugging Face tokenizer puts before every text, or none, read from the
/// folder's files as transformers reads them:
/// <list type="number">
/// <item><c>tokenizer_config.json</c>'s <c>add_bos_token</c> decides when it is there (Llama 2, Mistral: true; Qwen2: false);</item>
/// <item>else a byte-level <c>tokenizer.json</c> (Llama 3, Qwen2, SmolLM) adds one when its <c>post_processor</c> is a
/// <c>TemplateProcessing</c> (alone or inside a <c>Sequence</c>) whose <c>single</c> template starts with a special token
/// (Llama 3's <c>&lt;|begin_of_text|&gt;</c>);</item>
/// <item>else a SentencePiece tokenizer (<c>tokenizer.model</c>, with a tokenizer.json that is not byte-level or none) adds
/// one, as transformers' LlamaTokenizer does by default.</item>
/// </list>
/// The id is the template's special token's id, else <c>tokenizer_config.json</c>'s <c>bos_token</c> looked up in
/// tokenizer.json, else config.json's <c>bos_token_id</c>. Training prepends it to every source, decoding to every prompt and
/// <c>orchestrator generate --input</c> to its text; a sweep's model identity records it, so it is part of the cell key.
/// </summary>
public static class LlamaBeginToken
{
    public const string TokenizerConfigFile = "tokenizer_config.json";

    /// <summary>The id the folder's tokenizer puts first, or null when it adds none.</summary>
    /// <exception cref="FormatException">A malformed file, or a begin token that is added but whose id no file names.</exception>
    public static int? Of(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        JsonObject? tokenizerConfig = ReadObject(Path.Combine(folder, TokenizerConfigFile));
        JsonObject? tokenizerJson = ReadObject(Path.Combine(folder, "tokenizer.json"));
        (string Content, int? Id)? template = tokenizerJson is null ? null : TemplateBegin(tokenizerJson);

        bool adds;
        string why;
        if (tokenizerConfig?["add_bos_token"] is JsonValue add && add.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
        {
            adds = add.GetValue<bool>();
            why = $"{TokenizerConfigFile} add_bos_token: {(adds ? "true" : "false")}";
        }
        else if (tokenizerJson is not null && IsByteLevel(tokenizerJson))
        {
            adds = template is not null;
            why = "tokenizer.json's TemplateProcessing post-processor";
        }
        else if (File.Exists(Path.Combine(folder, "tokenizer.model")))
        {
            adds = true;
            why = "a SentencePiece tokenizer.model (LlamaTokenizer's default add_bos_token)";
        }
        else
        {
            adds = false;
            why = "";
        }

        if (!adds) return null;
        if (template?.Id is { } fromTemplate) return fromTemplate;
        if (tokenizerConfig?["bos_token"] is { } bosToken && tokenizerJson is not null)
        {
            string? content = bosToken switch
            {
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                JsonObject o => o["content"]?.GetValue<string>(),
                _ => null,
            };
            if (content is not null && IdOf(tokenizerJson, content) is { } named) return named;
        }

        if (ReadObject(Path.Combine(folder, "config.json"))?["bos_token_id"] is JsonValue configBos && configBos.GetValueKind() == JsonValueKind.Number)
        {
            return configBos.GetValue<int>();
        }

        throw new FormatException(
            $"{folder}: the tokenizer adds a begin token ({why}) but no file names its id (tokenizer.json's template or added tokens, {TokenizerConfigFile}'s bos_token, config.json's bos_token_id).");
    }

    /// <summary>The special token a TemplateProcessing post-processor puts first in a single sequence, with its id when found.</summary>
    private static (string Content, int? Id)? TemplateBegin(JsonObject tokenizerJson)
    {
        if (tokenizerJson["post_processor"] is not JsonObject post) return null;
        JsonObject? template = Type(post) switch
        {
            "TemplateProcessing" => post,
            "Sequence" => (post["processors"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault(p => Type(p) == "TemplateProcessing"),
            _ => null,
        };
        if (template?["single"] is not JsonArray single || single.FirstOrDefault() is not JsonObject first
            || first["SpecialToken"] is not JsonObject special || special["id"]?.GetValue<string>() is not { } content)
        {
            return null;
        }

        int? id = template["special_tokens"]?[content]?["ids"] is JsonArray ids && ids.Count > 0 ? ids[0]!.GetValue<int>() : IdOf(tokenizerJson, content);
        return (content, id);
    }

    private static string? Type(JsonObject node) => node["type"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>The id of <paramref name="content"/> among tokenizer.json's added tokens, else in its model's vocabulary.</summary>
    private static int? IdOf(JsonObject tokenizerJson, string content)
    {
        foreach (JsonNode? token in tokenizerJson["added_tokens"] as JsonArray ?? [])
        {
            if (token?["content"]?.GetValue<string>() == content) return token["id"]?.GetValue<int>();
        }

        return tokenizerJson["model"]?["vocab"] is JsonObject vocab && vocab[content] is JsonValue id && id.GetValueKind() == JsonValueKind.Number
            ? id.GetValue<int>()
            : null;
    }

    /// <summary>A byte-level BPE tokenizer.json (the kind read in place of tokenizer.model): a ByteLevel pre-tokenizer, no byte fallback.</summary>
    private static bool IsByteLevel(JsonObject tokenizerJson)
    {
        if (tokenizerJson["model"]?["byte_fallback"] is JsonValue fallback && fallback.GetValueKind() == JsonValueKind.True) return false;
        static bool HasByteLevel(JsonNode? node) => node is JsonObject o
            && (Type(o) == "ByteLevel" || (Type(o) == "Sequence" && (o["pretokenizers"] as JsonArray ?? []).Any(HasByteLevel)));
        return HasByteLevel(tokenizerJson["pre_tokenizer"]);
    }

    private static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FormatException($"{path} is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path} is not valid JSON ({e.Message}).", e);
        }
    }
}
