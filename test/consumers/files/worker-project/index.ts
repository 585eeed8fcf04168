// A user's Worker: ondevice's edge app as the whole Worker (settings from wrangler.toml's vars).
export { default } from 'ondevice/worker'
