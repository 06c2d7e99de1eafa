using System.Text;
using System.Text.Json.Nodes;
using MiniVmm.Host.Qmp.Protocol;

using MiniVmm.Host.Tests.Support;

namespace MiniVmm.Host.Tests.Qmp;

[TestFixture]
public sealed class QmpInputFramerTests
{
    private static List<QmpInput> Feed(QmpInputFramer framer, string text)
    {
        var output = new List<QmpInput>();
        framer.Feed(Encoding.UTF8.GetBytes(text), output);
        return output;
    }

    [Test]
    public void Object_split_across_reads_comes_out_once_complete()
    {
        var framer = new QmpInputFramer();

        Assert.That(Feed(framer, "{\"exec"), Is.Empty);
        Assert.That(Feed(framer, "ute\": \"query-"), Is.Empty);
        List<QmpInput> done = Feed(framer, "status\"}");

        Assert.That(done, Has.Count.EqualTo(1));
        Assert.That(JsonText.Of(done[0].Value), Is.EqualTo("""{"execute":"query-status"}"""));
    }

    [Test]
    public void Byte_by_byte_feeding_works()
    {
        var framer = new QmpInputFramer();
        var output = new List<QmpInput>();
        foreach (byte b in Encoding.UTF8.GetBytes("{\"a\": [1, {\"b\": \"}\"}]}\n{\"c\": \"é\"}"))
        {
            framer.Feed([b], output);
        }

        Assert.That(output.Select(i => JsonText.Of(i.Value)), Is.EqualTo(new[] { """{"a":[1,{"b":"}"}]}""", """{"c":"é"}""" }));
    }

    // Found by the fuzzer: the JSON reader checks structure but decodes strings only when they are
    // read, so these passed the framer and threw InvalidOperationException out of the dispatcher.
    [TestCase(new byte[] { 0x80 }, "invalid UTF-8 sequence at byte 36 of the message", TestName = "A_stray_continuation_byte_in_a_string_is_a_parse_error")]
    [TestCase(new byte[] { 0xc3 }, "invalid UTF-8 sequence at byte 36 of the message", TestName = "A_cut_two_byte_sequence_in_a_string_is_a_parse_error")]
    [TestCase(new byte[] { 0xed, 0xa0, 0x80 }, "invalid UTF-8 sequence at byte 36 of the message", TestName = "An_encoded_surrogate_in_a_string_is_a_parse_error")]
    public void Bytes_that_are_not_UTF_8_inside_a_string_are_a_parse_error_and_the_next_value_parses(byte[] bad, string expected)
    {
        var framer = new QmpInputFramer();
        var output = new List<QmpInput>();
        byte[] text = [.. "{\"execute\": \"query-status\", \"id\": \"x"u8, .. bad, .. "\"}\n{\"execute\": \"stop\"}\n"u8];

        framer.Feed(text, output);

        Assert.That(output, Has.Count.EqualTo(2));
        Assert.That(output[0].ParseError, Is.EqualTo($"JSON parse error, {expected}"));
        Assert.That((string?)output[1].Value?["execute"], Is.EqualTo("stop"));
    }

    [Test]
    public void A_lone_surrogate_escape_is_a_parse_error()
    {
        List<QmpInput> output = Feed(new QmpInputFramer(), "{\"execute\": \"\\ud800\"}\n");

        Assert.That(output, Has.Count.EqualTo(1));
        Assert.That(output[0].IsParseError, Is.True, () => $"parsed as {JsonText.Of(output[0].Value)}");
        Assert.That(output[0].ParseError, Does.StartWith("JSON parse error, "));
    }

    [Test]
    public void A_duplicate_member_is_a_parse_error()
    {
        List<QmpInput> output = Feed(new QmpInputFramer(), "{\"execute\": \"stop\", \"execute\": \"cont\"}\n");

        Assert.That(output, Has.Count.EqualTo(1));
        Assert.That(output[0].IsParseError, Is.True, () => $"parsed as {JsonText.Of(output[0].Value)}");
    }

    [Test]
    public void Several_objects_in_one_read_come_out_in_order()
    {
        var framer = new QmpInputFramer();

        List<QmpInput> output = Feed(framer, "{\"execute\":\"a\"}{\"execute\":\"b\"}\n  {\"execute\":\"c\"}\r\n");

        Assert.That(output.Select(i => (string?)i.Value?["execute"]), Is.EqualTo(new[] { "a", "b", "c" }));
    }

    [Test]
    public void Malformed_input_is_reported_and_parsing_resumes_after_the_newline()
    {
        var framer = new QmpInputFramer();

        List<QmpInput> output = Feed(framer, "{\"execute\": oops, \"x\": 1}\n{\"execute\":\"ok\"}\n");

        Assert.That(output, Has.Count.EqualTo(2));
        Assert.That(output[0].ParseError, Does.StartWith("JSON parse error"));
        Assert.That((string?)output[1].Value?["execute"], Is.EqualTo("ok"));
    }

    [Test]
    public void Malformed_line_without_newline_yet_is_discarded_up_to_it()
    {
        var framer = new QmpInputFramer();

        List<QmpInput> first = Feed(framer, "}garbage that goes on");
        List<QmpInput> second = Feed(framer, " and on\n{\"execute\":\"ok\"}");

        Assert.That(first, Has.Count.EqualTo(1));
        Assert.That(first[0].IsParseError, Is.True);
        Assert.That(second.Select(i => (string?)i.Value?["execute"]), Is.EqualTo(new[] { "ok" }));
    }

    [Test]
    public void Non_object_values_are_passed_on()
    {
        var framer = new QmpInputFramer();

        List<QmpInput> output = Feed(framer, "[1,2] \"text\" 42\n");

        Assert.That(output.Select(i => JsonText.Of(i.Value)), Is.EqualTo(new[] { "[1,2]", "\"text\"", "42" }));
    }

    [Test]
    public void Oversized_message_is_an_error_and_the_stream_recovers()
    {
        var framer = new QmpInputFramer(maxMessageBytes: 64);

        List<QmpInput> output = Feed(framer, "{\"execute\": \"" + new string('x', 200));
        List<QmpInput> after = Feed(framer, "\"}\n{\"execute\":\"ok\"}");

        Assert.That(output, Has.Count.EqualTo(1));
        Assert.That(output[0].ParseError, Does.Contain("64-byte limit"));
        Assert.That(after.Select(i => (string?)i.Value?["execute"]), Is.EqualTo(new[] { "ok" }));
    }

    [Test]
    public void Whitespace_alone_yields_nothing()
    {
        var framer = new QmpInputFramer();

        Assert.That(Feed(framer, " \r\n\t\n"), Is.Empty);
        Assert.That(Feed(framer, "{}").Single().Value, Is.InstanceOf<JsonObject>());
    }
}
