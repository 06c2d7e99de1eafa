using System.Buffers.Binary;
using System.Text;
using MiniVmm.Migration.Savevm;

namespace MiniVmm.Migration.Tests.Savevm;

/// <summary>Builds migration stream bytes by hand, element by element, for loader tests.</summary>
internal sealed class StreamBuilder
{
    /// <summary>Length of <c>Header().Configuration("none")</c>: magic, version, 0x07, be32 4, "none".</summary>
    public const int StandardHeaderLength = 17;

    private readonly List<byte> _bytes = [];

    /// <summary>Bytes written so far (the offset of the next element).</summary>
    public int Length => _bytes.Count;

    public StreamBuilder Bytes(params ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            _bytes.Add(b);
        }

        return this;
    }

    public StreamBuilder U8(int value) => Bytes((byte)value);

    public StreamBuilder Be16(int value)
    {
        Span<byte> buffer = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(buffer, (ushort)value);
        return Bytes(buffer);
    }

    public StreamBuilder Be32(uint value)
    {
        Span<byte> buffer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(buffer, value);
        return Bytes(buffer);
    }

    public StreamBuilder Be64(ulong value)
    {
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(buffer, value);
        return Bytes(buffer);
    }

    public StreamBuilder Zeros(int count) => Bytes(new byte[count]);

    public StreamBuilder CountedString(string value)
    {
        byte[] text = Encoding.UTF8.GetBytes(value);
        return U8(text.Length).Bytes(text);
    }

    public StreamBuilder Header(uint magic = StreamHeader.Magic, uint version = StreamHeader.Version) =>
        Be32(magic).Be32(version);

    /// <summary>The configuration section: 0x07, be32 name length, the name (no subsections).</summary>
    public StreamBuilder Configuration(string machineName = "none")
    {
        byte[] name = Encoding.UTF8.GetBytes(machineName);
        return U8((byte)SectionType.Configuration).Be32((uint)name.Length).Bytes(name);
    }

    /// <summary>The configuration section with a capabilities subsection.</summary>
    public StreamBuilder Configuration(string machineName, params string[] capabilities)
    {
        Configuration(machineName);
        U8((byte)SectionType.Subsection).CountedString("configuration/capabilities").Be32(1).Be32((uint)capabilities.Length);
        foreach (string capability in capabilities)
        {
            CountedString(capability);
        }

        return this;
    }

    /// <summary>Header and a <c>none</c> configuration: the 17 bytes every QEMU 7.2 <c>-M none</c> stream starts with.</summary>
    public StreamBuilder StandardHeader() => Header().Configuration();

    public StreamBuilder Start(uint sectionId, string idStr, uint instanceId, uint versionId) =>
        U8((byte)SectionType.Start).Be32(sectionId).CountedString(idStr).Be32(instanceId).Be32(versionId);

    public StreamBuilder Full(uint sectionId, string idStr, uint instanceId, uint versionId) =>
        U8((byte)SectionType.Full).Be32(sectionId).CountedString(idStr).Be32(instanceId).Be32(versionId);

    public StreamBuilder Part(uint sectionId) => U8((byte)SectionType.Part).Be32(sectionId);

    public StreamBuilder End(uint sectionId) => U8((byte)SectionType.End).Be32(sectionId);

    public StreamBuilder Footer(uint sectionId) => U8((byte)SectionType.Footer).Be32(sectionId);

    public StreamBuilder Eof() => U8((byte)SectionType.Eof);

    public StreamBuilder VmDescription(string json)
    {
        byte[] text = Encoding.UTF8.GetBytes(json);
        return U8((byte)SectionType.VmDescription).Be32((uint)text.Length).Bytes(text);
    }

    /// <summary>A whole FULL section of QEMU's <c>timer</c> (version 2): 24 bytes of body, then the footer.</summary>
    public StreamBuilder TimerSection(uint sectionId, long ticksOffset = 0, long clockOffset = 0, uint versionId = 2) =>
        Full(sectionId, "timer", 0, versionId).Be64((ulong)ticksOffset).Zeros(8).Be64((ulong)clockOffset).Footer(sectionId);

    public byte[] ToArray() => [.. _bytes];
}
