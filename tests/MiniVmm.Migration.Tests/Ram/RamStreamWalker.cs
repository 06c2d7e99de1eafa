using System.Buffers.Binary;
using System.Text;

namespace MiniVmm.Migration.Tests.Ram;

/// <summary>One RAM record as found in a stream.</summary>
internal sealed record RamRecord(long StreamOffset, int Flags, long Address, string? BlockName);

/// <summary>One section of a stream, with its RAM records when it is a RAM section.</summary>
internal sealed record WalkedSection(byte Type, uint SectionId, string? IdStr, long BodyStart, long BodyEnd, List<RamRecord> Records);

/// <summary>
/// An independent reader of the -M none stream layout for tests (<c>docs/stream-format.md</c>): header,
/// configuration, sections with footers (RAM bodies record by record, timer and globalstate by
/// their fixed sizes), EOF, vmdesc.
/// </summary>
internal static class RamStreamWalker
{
    public static List<WalkedSection> Walk(byte[] s)
    {
        int p = 8;
        Assert.That(s[p], Is.EqualTo(0x07), "configuration section");
        p += 1 + 4 + (int)BinaryPrimitives.ReadUInt32BigEndian(s.AsSpan(p + 1));
        var sections = new List<WalkedSection>();
        var names = new Dictionary<uint, string>();
        while (true)
        {
            byte type = s[p++];
            if (type == 0x00)
            {
                Assert.That(s[p], Is.EqualTo(0x06), "vmdesc after EOF");
                return sections;
            }

            uint id = BinaryPrimitives.ReadUInt32BigEndian(s.AsSpan(p));
            p += 4;
            if (type is 0x01 or 0x04)
            {
                int length = s[p];
                names[id] = Encoding.ASCII.GetString(s, p + 1, length);
                p += 1 + length + 8;
            }

            string name = names[id];
            long bodyStart = p;
            var records = new List<RamRecord>();
            switch (name)
            {
                case "ram":
                    p = WalkRam(s, p, records);
                    break;
                case "timer":
                    p += 24;
                    break;
                case "globalstate":
                    p += 104;
                    break;
                default:
                    Assert.Fail($"unexpected section '{name}'");
                    break;
            }

            sections.Add(new WalkedSection(type, id, name, bodyStart, p, records));
            Assert.That(s[p], Is.EqualTo(0x7e), $"footer of section {id} at {p}");
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(s.AsSpan(p + 1)), Is.EqualTo(id));
            p += 5;
        }
    }

    private static int WalkRam(byte[] s, int p, List<RamRecord> records)
    {
        while (true)
        {
            int start = p;
            ulong word = BinaryPrimitives.ReadUInt64BigEndian(s.AsSpan(p));
            p += 8;
            int flags = (int)(word & 0xfff);
            long address = (long)(word & ~0xfffUL);
            if (flags == 0x10)
            {
                records.Add(new RamRecord(start, flags, 0, null));
                return p;
            }

            if (flags == 0x04)
            {
                long remaining = address;
                while (remaining > 0)
                {
                    int length = s[p];
                    p += 1 + length;
                    remaining -= (long)BinaryPrimitives.ReadUInt64BigEndian(s.AsSpan(p));
                    p += 8;
                }

                records.Add(new RamRecord(start, flags, address, null));
                continue;
            }

            string? block = null;
            if ((flags & 0x20) == 0)
            {
                int length = s[p];
                block = Encoding.ASCII.GetString(s, p + 1, length);
                p += 1 + length;
            }

            p += (flags & ~0x20) switch
            {
                0x02 => 1,
                0x08 => 4096,
                _ => throw new AssertionException($"unexpected RAM flags 0x{flags:x} at {start}"),
            };
            records.Add(new RamRecord(start, flags, address, block));
        }
    }
}
