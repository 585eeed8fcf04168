// The recipe a web app uses (docs/sdk.md, "A page with Vite"): the ondevice plugin, nothing else.
import { ondevice } from 'ondevice/vite'
import { defineConfig } from 'vite'

export default defineConfig({ plugins: [ondevice()] })
