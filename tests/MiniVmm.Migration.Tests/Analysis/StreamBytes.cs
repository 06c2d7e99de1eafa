using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Migration.Tests.Analysis;

/// <summary>Builds small hand-made migration streams byte by byte.</summary>
internal sealed class StreamBytes
{
    private readonly List<byte> _bytes = [];

    public int Length => _bytes.Count;

    public StreamBytes U8(int value)
    {
        _bytes.Add((byte)value);
        return this;
    }

    public StreamBytes Be16(ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        _bytes.AddRange(b);
        return this;
    }

    public StreamBytes Be32(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        _bytes.AddRange(b);
        return this;
    }

    public StreamBytes Be64(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        _bytes.AddRange(b);
        return this;
    }

    public StreamBytes Ascii(string text)
    {
        _bytes.AddRange(Encoding.ASCII.GetBytes(text));
        return this;
    }

    public StreamBytes Counted(string text) => U8(text.Length).Ascii(text);

    public StreamBytes Fill(int count, byte value)
    {
        _bytes.AddRange(Enumerable.Repeat(value, count));
        return this;
    }

    /// <summary>Magic, version 3 and a configuration section for machine "none", optionally with capabilities.</summary>
    public StreamBytes Preamble(params string[] capabilities)
    {
        Be32(0x5145564d).Be32(3).U8(0x07).Be32(4).Ascii("none");
        if (capabilities.Length > 0)
        {
            U8(0x05).Counted("configuration/capabilities").Be32(1).Be32((uint)capabilities.Length);
            foreach (string capability in capabilities)
            {
                Counted(capability);
            }
        }

        return this;
    }

    /// <summary>A START or FULL section header.</summary>
    public StreamBytes NamedSection(int type, uint id, string idstr, uint instance, uint version) =>
        U8(type).Be32(id).Counted(idstr).Be32(instance).Be32(version);

    /// <summary>A PART or END section header.</summary>
    public StreamBytes IdSection(int type, uint id) => U8(type).Be32(id);

    public StreamBytes Footer(uint id) => U8(0x7e).Be32(id);

    /// <summary>EOF, then the vmdesc trailer with <paramref name="json"/>.</summary>
    public StreamBytes EofAndVmdesc(string json)
    {
        byte[] text = Encoding.UTF8.GetBytes(json);
        U8(0x00).U8(0x06).Be32((uint)text.Length);
        _bytes.AddRange(text);
        return this;
    }

    /// <summary>A RAM START section for one block "ram" of <paramref name="size"/> bytes (id 2), with its footer.</summary>
    public StreamBytes RamStart(ulong size, ulong? guestAddress = null)
    {
        NamedSection(0x01, 2, "ram", 0, 4).Be64(size | 0x04).Counted("ram").Be64(size);
        if (guestAddress is { } address)
        {
            Be64(address);
        }

        return Be64(0x10).Footer(2);
    }

    public byte[] ToArray() => [.. _bytes];
}
