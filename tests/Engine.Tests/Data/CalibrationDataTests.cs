using System.Text;
using ModelOptPS.Engine.Data;
using ModelOptPS.Engine.Errors;
using ModelOptPS.Fixtures;
using Parquet;
using Parquet.Schema;

namespace ModelOptPS.Engine.Tests.Data;

public class CalibrationDataTests : IDisposable
{
    private readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private TextTokenizer FixtureTokenizerLoaded()
    {
        FixtureTokenizer.Write(_tmp.Path);
        return TextTokenizer.Load(_tmp.Path);
    }

    [Fact]
    public void FixtureTokenizerEncodesOneTokenPerByteAndKnowsItsSpecials()
    {
        using var tokenizer = FixtureTokenizerLoaded();
        Assert.Equal(Encoding.UTF8.GetBytes("Hi é!").Select(b => (int)b), tokenizer.Encode("Hi é!"));
        Assert.Equal(256, tokenizer.EosId);
        Assert.Equal([257, 104, 258], tokenizer.Encode("<|im_start|>h<|im_end|>"));
        Assert.Equal("Hi é!", tokenizer.Decode(tokenizer.Encode("Hi é!")));
        Assert.Equal(ChatRenderer.Format.ChatMl, ChatRenderer.Detect(tokenizer.ChatTemplate));
    }

    [Fact]
    public void MissingTokenizerIsAnError() =>
        Assert.Equal("TokenizerNotFound", Assert.Throws<ModelOptException>(() => TextTokenizer.Load(_tmp.Path)).ErrorId);

    [Fact]
    public void BuiltInCorpusHasDisjointTrainAndHeldOutSplits()
    {
        var train = CalibrationDocuments.BuiltIn(CorpusSplit.Train).ToList();
        var heldOut = CalibrationDocuments.BuiltIn(CorpusSplit.HeldOut).ToList();
        Assert.Equal(288, train.Count);
        Assert.Equal(32, heldOut.Count);
        Assert.Empty(train.Select(d => d.Text).Intersect(heldOut.Select(d => d.Text)));
        Assert.Contains(train, d => d.Source.Contains("faq/", StringComparison.Ordinal));
        Assert.Contains(train, d => d.Source.EndsWith(".py", StringComparison.Ordinal));
        Assert.True(train.Sum(d => d.Text.Length) > 400_000);
    }

    [Fact]
    public void JsonlTextAndChatRecords()
    {
        var path = _tmp.Combine("data.jsonl");
        File.WriteAllLines(path, [
            "{\"text\": \"plain document\"}",
            "",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi?\"}, {\"role\": \"assistant\", \"content\": \"Hello.\"}]}",
        ]);
        var docs = CalibrationDocuments.FromFile(path, null, ChatRenderer.Format.ChatMl);
        Assert.Equal("plain document", docs[0].Text);
        Assert.Equal("<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n", docs[1].Text);
        var plain = CalibrationDocuments.FromFile(path, null, ChatRenderer.Format.Plain);
        Assert.Equal("user: Hi?\nassistant: Hello.", plain[1].Text);
        Assert.Equal(path + ":3", docs[1].Source);
    }

    [Fact]
    public void BadJsonlNamesTheLine()
    {
        var path = _tmp.Combine("bad.jsonl");
        File.WriteAllLines(path, ["{\"text\": \"ok\"}", "{\"body\": 1}"]);
        var ex = Assert.Throws<ModelOptException>(() => CalibrationDocuments.FromFile(path, null, ChatRenderer.Format.Plain));
        Assert.Equal("DatasetInvalid", ex.ErrorId);
        Assert.Contains("line 2", ex.Message);
        Assert.Equal("DatasetNotFound", Assert.Throws<ModelOptException>(() => CalibrationDocuments.FromFile(_tmp.Combine("none.jsonl"), null, ChatRenderer.Format.Plain)).ErrorId);
    }

    [Theory]
    [InlineData("[1, 2, 3]", "line 2 is not a JSON object (it is an array)")]
    [InlineData("\"text\"", "line 2 is not a JSON object (it is a string)")]
    [InlineData("null", "line 2 is not a JSON object (it is null)")]
    [InlineData("{\"messages\": [{\"role\": 1, \"content\": \"x\"}]}", "line 2: message 1 needs string \"role\" and \"content\"")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"user\", \"content\": [\"x\"]}]}", "line 2: message 2 needs")]
    [InlineData("{\"messages\": [\"hello\"]}", "line 2: message 1 needs")]
    public void JsonlRecordsOfTheWrongShapeAreDatasetInvalidWithTheLine(string record, string expected)
    {
        var path = _tmp.Combine("shape.jsonl");
        File.WriteAllLines(path, ["{\"text\": \"ok\"}", record]);
        var ex = Assert.Throws<ModelOptException>(() => CalibrationDocuments.FromFile(path, null, ChatRenderer.Format.ChatMl));
        Assert.Equal("DatasetInvalid", ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, ex.Kind);
        Assert.Equal(path, ex.Path);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public async Task ParquetColumnByName()
    {
        var path = _tmp.Combine("train-00000.parquet");
        var text = new DataField<string>("content");
        var id = new DataField<int>("id");
        await using (var stream = File.Create(path))
        await using (var writer = await ParquetWriter.CreateAsync(new ParquetSchema(id, text), stream))
        using (var group = writer.CreateRowGroup())
        {
            await group.WriteAsync(id, new ReadOnlyMemory<int>([1, 2]));
            await group.WriteAsync(text, ["first row", "second row"]);
        }
        var docs = CalibrationDocuments.FromFile(path, "content", ChatRenderer.Format.Plain);
        Assert.Equal(["first row", "second row"], docs.Select(d => d.Text));
        Assert.Equal("DatasetColumnNotFound", Assert.Throws<ModelOptException>(() => CalibrationDocuments.FromFile(path, "text", ChatRenderer.Format.Plain)).ErrorId);
        Assert.Equal("DatasetColumnNotText", Assert.Throws<ModelOptException>(() => CalibrationDocuments.FromFile(path, "id", ChatRenderer.Format.Plain)).ErrorId);
    }

    [Fact]
    public void SequencesArePackedFullAndDeterministic()
    {
        using var tokenizer = FixtureTokenizerLoaded();
        var options = new SequenceOptions { NumSamples = 10, SequenceLength = 64, Seed = 7 };
        var a = CalibrationSequences.Build(CalibrationDocuments.BuiltIn(CorpusSplit.Train), tokenizer, options);
        var b = CalibrationSequences.Build(CalibrationDocuments.BuiltIn(CorpusSplit.Train), tokenizer, options);
        var c = CalibrationSequences.Build(CalibrationDocuments.BuiltIn(CorpusSplit.Train), tokenizer, options with { Seed = 8 });
        Assert.Equal(10, a.Count);
        Assert.All(a, s => Assert.Equal(64, s.Length));
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        var few = CalibrationSequences.Build([new CalibrationDocument("short", "x")], tokenizer, options);
        Assert.Empty(few);
    }
}
