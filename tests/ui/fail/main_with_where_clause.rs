use daemon_runtime::daemon;

#[daemon]
fn main()
where
    u8: Copy,
{
}
