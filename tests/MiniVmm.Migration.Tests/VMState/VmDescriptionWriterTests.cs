using MiniVmm.Migration.VMState;

namespace MiniVmm.Migration.Tests.VMState;

public sealed class VmDescriptionWriterTests
{
    [Test]
    public void Compact_layout_matches_qemu_json_writer()
    {
        var json = new VmDescriptionWriter();
        json.StartObject();
        json.Int64("a", 1);
        json.StartArray("b");
        json.StartObject();
        json.String("c", "x");
        json.EndObject();
        json.Int64(null, -2);
        json.Bool(null, true);
        json.StartArray();
        json.EndArray();
        json.EndArray();
        json.StartObject("d");
        json.EndObject();
        json.UInt64("e", ulong.MaxValue);
        json.Bool("f", false);
        json.Null("g");
        json.EndObject();

        Assert.That(json.ToString(), Is.EqualTo(
            "{\"a\": 1, \"b\": [{\"c\": \"x\"}, -2, true, []], \"d\": {}, \"e\": 18446744073709551615, \"f\": false, \"g\": null}"));
        Assert.That(json.IsComplete, Is.True);
    }

    [Test]
    public void Strings_are_escaped_as_qemu_does()
    {
        var json = new VmDescriptionWriter();
        json.String(null, "q\"b\\ \b\f\n\r\t \u0001\u001f ~\u007f \u00e9 \U0001F600 \ud800");

        Assert.That(json.ToString(), Is.EqualTo(
            "\"q\\\"b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001F ~\\u007F \\u00E9 \\uD83D\\uDE00 \\uFFFD\""));
        Assert.That(json.ToUtf8(), Is.All.LessThan(0x80));
    }

    [Test]
    public void Member_names_are_escaped_too()
    {
        var json = new VmDescriptionWriter();
        json.StartObject();
        json.Int64("a\"b", 0);
        json.EndObject();

        Assert.That(json.ToString(), Is.EqualTo("{\"a\\\"b\": 0}"));
    }

    [Test]
    public void Misuse_is_rejected()
    {
        var json = new VmDescriptionWriter();
        json.StartObject();
        Assert.That(() => json.Int64(null, 1), Throws.InvalidOperationException);
        Assert.That(() => json.EndArray(), Throws.InvalidOperationException);
        json.StartArray("list");
        Assert.That(() => json.String("name", "v"), Throws.InvalidOperationException);
        Assert.That(() => json.EndObject(), Throws.InvalidOperationException);
        json.EndArray();
        json.EndObject();
        Assert.That(() => json.EndObject(), Throws.InvalidOperationException);
        Assert.That(json.ToString(), Is.EqualTo("{\"list\": []}"));
    }
}
