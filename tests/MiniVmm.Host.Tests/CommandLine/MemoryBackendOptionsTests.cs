using MiniVmm.Host.CommandLine;

namespace MiniVmm.Host.Tests.CommandLine;

/// <summary><c>-object memory-backend-memfd</c>, <c>-machine memory-backend=ID</c> and <c>-mem-prealloc</c>, with QEMU's rules and messages.</summary>
[TestFixture]
public sealed class MemoryBackendOptionsTests
{
    [Test]
    public void A_memfd_backend_becomes_guest_RAM_named_after_it()
    {
        VmOptions options = Parse(
            machine: ["none,memory-backend=mem0"],
            objects: ["memory-backend-memfd,id=mem0,size=1G,share=on,hugetlb=on,hugetlbsize=2M,prealloc=on"]);

        Assert.That(options.MemoryBytes, Is.EqualTo(1UL << 30), "without -m the backend gives the size");
        Assert.That(options.MemoryBackend, Is.EqualTo(new MemoryBackendSpec(
            "mem0", 1UL << 30, HugeTlb: true, Prealloc: true, "memory-backend-memfd,id=mem0,size=1G,share=on,hugetlb=on,hugetlbsize=2M,prealloc=on")));
        Assert.That(options.Objects, Is.Empty, "a memory backend is not a TLS object");
    }

    [Test]
    public void Mem_prealloc_and_incoming_prefault_are_read()
    {
        Assert.That(Parse(machine: ["none"], memory: ["64M"], memPrealloc: true).MemPrealloc, Is.True);
        Assert.That(Parse(machine: ["none"], memory: ["64M"]).IncomingPrefault, Is.True, "on by default");
        Assert.That(Parse(machine: ["none,x-incoming-prefault=off"], memory: ["64M"]).IncomingPrefault, Is.False);
    }

    [TestCase(new[] { "none,memory-backend=nope" }, new[] { "memory-backend-memfd,id=mem0,size=64M" }, new string[0], "Memory backend 'nope' not found")]
    [TestCase(new[] { "none,memory-backend=mem0" }, new[] { "memory-backend-memfd,id=mem0,size=64M" }, new[] { "32M" }, "Machine memory size does not match the size of the memory backend")]
    [TestCase(new[] { "none" }, new[] { "memory-backend-memfd,id=mem0,size=16M,bogus=on" }, new string[0], "-object memory-backend-memfd,id=mem0,size=16M,bogus=on: Invalid parameter 'bogus'")]
    [TestCase(new[] { "none" }, new[] { "memory-backend-memfd,id=mem0" }, new string[0], "-object memory-backend-memfd,id=mem0: can't create backend with size 0")]
    [TestCase(new[] { "none" }, new[] { "memory-backend-memfd,size=16M" }, new string[0], "-object memory-backend-memfd,size=16M: Parameter 'id' is missing")]
    [TestCase(new[] { "none" }, new[] { "memory-backend-memfd,id=m,size=16M,share=off" }, new string[0], "-object memory-backend-memfd,id=m,size=16M,share=off: share=off is not supported: MiniVmm's guest RAM is always a shared memfd (the guest harness maps it)")]
    [TestCase(new[] { "none" }, new[] { "memory-backend-memfd,id=m,size=16M,hugetlbsize=1G,hugetlb=on" }, new string[0], "-object memory-backend-memfd,id=m,size=16M,hugetlbsize=1G,hugetlb=on: hugetlbsize must be the host's default huge page size, 2M")]
    [TestCase(new[] { "none" }, new[] { "memory-backend-memfd,id=m,size=16M", "memory-backend-memfd,id=m,size=32M" }, new string[0], "-object memory-backend-memfd,id=m,size=32M: attempt to add duplicate property 'm' to object (type 'container')")]
    [TestCase(new[] { "none,x-incoming-prefault=maybe" }, new string[0], new[] { "64M" }, "-machine x-incoming-prefault=maybe: Parameter 'x-incoming-prefault' expects 'on' or 'off'")]
    public void Bad_backends_are_one_line_errors(string[] machine, string[] objects, string[] memory, string message)
    {
        var error = Assert.Throws<InvalidCommandLineException>(() => Parse(machine, objects, memory));
        Assert.That(error!.Message, Is.EqualTo(message));
    }

    private static VmOptions Parse(string[] machine, string[]? objects = null, string[]? memory = null, bool memPrealloc = false) =>
        VmOptionsParser.Validate(VmOptionsParser.Parse(new RunArguments
        {
            Machine = machine,
            Objects = objects ?? [],
            Memory = memory ?? [],
            MemPrealloc = memPrealloc,
        }));
}
